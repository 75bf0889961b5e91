"""Notices: what a person was told, shown in the admin and sent by e-mail (governance.services.notifications)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    """A notice for one person, shown in the admin and sent by e-mail (governance.services.notifications.notify)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Where to act, e.g. the case or queue page.")
    kind = models.CharField(max_length=40, blank=True, help_text="What it is about, e.g. sla.warning.")
    category_slug = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "created_at"], name="governance_notice_user_unread")]

    def __str__(self) -> str:
        return self.subject
