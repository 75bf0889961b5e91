"""The case list's filter for the cases behind a dashboard figure (`?kpi=overridden&kpi_window=since/until`).

Registered on the Case admin from above (`cases.admin.register_case_list_filter`): which cases a figure counts is
the KPIs' rule (`metrics.kpis.cases_behind`), and cases never names metrics. A value that is not a figure, a
window that does not parse, or a missing reviewer is refused the admin's way (a bad filter, not a 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_last_value_from_parameters
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from metrics import kpis

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList


class KpiFigureFilter(admin.ListFilter):
    """The cases a dashboard figure counts over its window: shown in the sidebar only while in use."""

    title = "dashboard figure"
    parameters = ("kpi", "kpi_window", "kpi_reviewer")

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: type[Model], model_admin: admin.ModelAdmin[Any]
    ) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = get_last_value_from_parameters(params, name)
                params.pop(name)

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def has_output(self) -> bool:
        return bool(self.used_parameters)

    def _figure(self) -> tuple[str, kpis.Window, str]:
        figure = str(self.used_parameters.get("kpi") or "")
        if figure not in kpis.FIGURES_BEHIND:
            raise IncorrectLookupParameters(f"kpi={figure!r} is not one of {', '.join(kpis.FIGURES_BEHIND)}.")
        since, _, until = str(self.used_parameters.get("kpi_window") or "").partition("/")
        try:
            window = kpis.Window.parse(since=since or None, until=until or None, now=None)
        except ValidationError as exc:
            raise IncorrectLookupParameters(f"kpi_window must be since/until: {' '.join(exc.messages)}") from exc
        return figure, window, str(self.used_parameters.get("kpi_reviewer") or "")

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.used_parameters:
            return queryset
        figure, window, reviewer = self._figure()
        try:
            return queryset.filter(kpis.cases_behind(figure, window, reviewer=reviewer))
        except ValidationError as exc:
            raise IncorrectLookupParameters(" ".join(exc.messages)) from exc

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=list(self.parameters)),
            "display": "All cases",
        }
        try:
            figure, window, reviewer = self._figure()
        except IncorrectLookupParameters:
            return
        start, end = timezone.localtime(window.start), timezone.localtime(window.end)
        who = f" ({reviewer})" if reviewer else ""
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": f"Cases {kpis.FIGURES_BEHIND[figure]}{who}, {start:%d %b %H:%M} to {end:%d %b %H:%M}",
        }
