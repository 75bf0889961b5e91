"""Incidents and their timelines: when automation went wrong, and who did what about it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.choices import IncidentStage
from governance.models.categories import Category, InCategoryQuerySet


class Incident(models.Model):
    """Something went wrong with automation: detect -> contain -> investigate -> remediate -> communicate -> closed.

    Opened by an automatic pause or an alert, or by hand; its timeline (IncidentEntry) says who did what.
    """

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=200)
    stage = models.CharField(max_length=16, choices=IncidentStage.choices, default=IncidentStage.DETECT)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    trigger = models.CharField(max_length=40, blank=True, help_text="What opened it: pause_rule, alert, manual.")
    evidence = models.JSONField(default=dict, blank=True, help_text="The numbers that opened it.")
    affected_case_ids = models.JSONField(default=list, blank=True)
    root_cause = models.TextField(blank=True)
    remediation = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()
    objects = InCategoryQuerySet["Incident"].as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=IncidentStage.values), name="%(app_label)s_%(class)s_stage_valid"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class IncidentEntry(models.Model):
    """One line of an incident's timeline: a stage change or a note, by a person or the system."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stage = models.CharField(max_length=16, choices=IncidentStage.choices)
    note = models.TextField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "incident timeline entries"

    def __str__(self) -> str:
        return f"{self.stage}: {self.note[:60]}"
