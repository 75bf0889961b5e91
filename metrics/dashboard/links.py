"""The addresses the dashboard links to: the case list, filtered to the cases behind a figure.

Every link is the Case admin's own list with its own filters (`cases.admin`) and the dashboard's figure filter
(`metrics.dashboard.filters`), so what it shows is narrowed by the same visibility as any case list, and a link
copied to someone else shows them only what they may see.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.urls import reverse
from django.utils.http import urlencode

from governance.models import Category
from metrics.kpis import Window

CASE_LIST = "admin:cases_case_changelist"


def instant(moment: datetime) -> str:
    """An instant as a link carries it: ISO 8601 in UTC with a Z, to the microsecond (the window is exact)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def window_param(window: Window) -> str:
    """`since/until`, the ISO 8601 way of writing an interval."""
    return f"{instant(window.start)}/{instant(window.end)}"


def cases_url(category: Category, figure: str | None = None, window: Window | None = None, **filters: str) -> str:
    """The case list of `category`, narrowed to the cases `figure` counts over `window` (see `kpis.cases_behind`),
    and to `filters` (the case list's own parameters: `route__exact`, `confidence`, `segment`, `queue`...)."""
    params = {"category": str(category.pk)}
    if figure is not None and window is not None:
        params |= {"kpi": figure, "kpi_window": window_param(window)}
    params |= filters
    return f"{reverse(CASE_LIST)}?{urlencode(params)}"
