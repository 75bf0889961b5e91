"""The project's admin site: Django's own, with the reviewer's workplace ("My queues") and the metrics dashboard
added.

It is the default site (`hitl_project.apps.HitlAdminConfig`), so `admin.site`, `@admin.register` and the
`admin:` URL names mean this site everywhere. What the workplace is (its pages, who sees "My queues") is defined by
reviews (`reviews.workplace`), what the dashboard is by metrics (`metrics.dashboard`); this class only decides
where they go among the site's URLs and apps.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver

from metrics.dashboard import dashboard_urls, with_dashboard
from reviews.workplace import with_my_queues, work_urls


class HitlAdminSite(admin.AdminSite):
    """The admin of HITL Desk: the model admins every app registers, the reviewer's workplace and the dashboard."""

    site_header = "HITL Desk"
    site_title = "HITL Desk"
    index_title = "Review, policy and audit"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Ahead of the site's own patterns, whose catch-all would otherwise answer first.
        return [*work_urls(self), *dashboard_urls(self), *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list = with_my_queues(super().get_app_list(request, app_label), request, app_label=app_label, site=self)
        return with_dashboard(app_list, request, app_label=app_label, site=self)
