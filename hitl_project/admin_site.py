"""The project's admin site: Django's own, with the reviewer's workplace and its "My queues" entry added.

It is the default site (`hitl_project.apps.HitlAdminConfig`), so `admin.site`, `@admin.register` and the
`admin:` URL names mean this site everywhere. What the workplace is (its pages, who sees "My queues") is defined by
reviews (`reviews.workplace`); this class only decides where it goes among the site's URLs and apps.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver

from reviews.workplace import with_my_queues, work_urls


class HitlAdminSite(admin.AdminSite):
    """The admin of HITL Desk: the model admins every app registers, and the reviewer's workplace."""

    site_header = "HITL Desk"
    site_title = "HITL Desk"
    index_title = "Review, policy and audit"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Ahead of the site's own patterns, whose catch-all would otherwise answer first.
        return [*work_urls(self), *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        return with_my_queues(super().get_app_list(request, app_label), request, app_label=app_label, site=self)
