"""Reads for the KPI views: per model version, how its outputs fared with people (one query for a whole list)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from cases.choices import AuditStatus, Route
from governance.models import ModelVersion
from metrics.kpis import Window
from metrics.stats import wilson_interval
from reviews.choices import OVERRIDE_ACTIONS, VERDICT_ACTIONS, Action
from reviews.models import Decision


def _decision_count(condition: Q) -> Coalesce:
    counts = (
        Decision.objects.filter(condition, case__model_version=OuterRef("pk"))
        .order_by()
        .values("case__model_version")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_kpis(queryset: QuerySet[ModelVersion], window: Window | None = None) -> QuerySet[ModelVersion]:
    """Annotate each version with its volume, auto share, human verdicts, overrides, audits and shadow agreement:
    over all time, or over `window` (cases created in it, decisions made in it, as the KPIs count)."""
    cases_in, decided_in = Q(), Q()
    if window is not None:
        cases_in = Q(cases__created_at__gte=window.start, cases__created_at__lt=window.end)
        decided_in = Q(created_at__gte=window.start, created_at__lt=window.end)
    return queryset.annotate(
        kpi_cases=Count("cases", filter=cases_in, distinct=True),
        kpi_auto=Count("cases", filter=cases_in & Q(cases__route=Route.AUTO), distinct=True),
        kpi_audited=Count(
            "cases", filter=cases_in & Q(cases__audit_status__in=[AuditStatus.CONFIRMED, AuditStatus.FLAGGED])
        ),
        kpi_flagged=Count("cases", filter=cases_in & Q(cases__audit_status=AuditStatus.FLAGGED)),
        kpi_reviewed=_decision_count(decided_in & Q(action__in=sorted(VERDICT_ACTIONS)) & ~Q(case__route=Route.SHADOW)),
        kpi_overridden=_decision_count(
            decided_in & Q(action__in=sorted(OVERRIDE_ACTIONS)) & ~Q(case__route=Route.SHADOW)
        ),
        kpi_shadow_agree=_decision_count(decided_in & Q(case__route=Route.SHADOW, action=Action.APPROVE)),
        kpi_shadow_total=_decision_count(
            decided_in & Q(case__route=Route.SHADOW, action__in=[Action.APPROVE, Action.CORRECT])
        ),
    )


def rate_with_interval(successes: int, total: int) -> dict[str, Any]:
    low, high = wilson_interval(successes, total)
    return {"n": total, "rate": successes / total if total else None, "low": low, "high": high}
