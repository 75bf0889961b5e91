"""The metrics dashboard in the admin: a category's KPIs over a window, as tiles, charts and tables, each figure
linked to the cases behind it, and the threshold advisor.

Like the reviewer's workplace, it is not a model admin: metrics defines its page and its "Dashboard" entry in the
app list here, and the project's site (`hitl_project.admin_site.HitlAdminSite`) calls them, as it owns the URLs
and the app list. The entry shows for anyone who may see at least one category.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse

from governance.admin_mixins import with_page_first
from metrics.dashboard.views import dashboard_view, sees_a_category


def dashboard_urls(site: AdminSite) -> list[URLPattern]:
    """The dashboard's page, wrapped by `site.admin_view`: signed-in staff only, CSRF, never cached."""
    return [path("metrics/dashboard/", site.admin_view(dashboard_view), name="metrics_dashboard")]


def with_dashboard(app_list: list[Any], request: HttpRequest, *, app_label: str | None, site: AdminSite) -> list[Any]:
    """`app_list`, with "Dashboard" first in Metrics for anyone who may see a category."""
    if app_label not in (None, "metrics") or not sees_a_category(request):
        return app_list
    url = reverse("admin:metrics_dashboard", current_app=site.name)
    return with_page_first(
        app_list, app_label="metrics", app_name="Metrics", page_name="Dashboard", object_name="Dashboard", url=url
    )


__all__ = ["dashboard_urls", "sees_a_category", "with_dashboard"]
