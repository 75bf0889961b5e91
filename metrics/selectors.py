"""Reads for the KPI views: per model version, how its outputs fared with people (one query for a whole list)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from cases.choices import AuditStatus, Route
from cases.models import Case, ShadowPrediction
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


def _case_count(condition: Q) -> Coalesce:
    counts = (
        Case.objects.filter(condition, model_version=OuterRef("pk"))
        .order_by()
        .values("model_version")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_kpis(queryset: QuerySet[ModelVersion], window: Window | None = None) -> QuerySet[ModelVersion]:
    """Annotate each version with its volume, auto share, human verdicts, overrides, audits and shadow agreement:
    over all time, or over `window` (cases created in it, decisions made in it, as the KPIs count).

    Every figure is a subquery per version, none a join: an aggregate over joined cases would put the subqueries
    in the GROUP BY, and PostgreSQL would then run each of them once per case (a page that never came back)."""
    cases_in, decided_in = Q(), Q()
    if window is not None:
        cases_in = Q(created_at__gte=window.start, created_at__lt=window.end)
        decided_in = Q(created_at__gte=window.start, created_at__lt=window.end)
    return queryset.annotate(
        kpi_cases=_case_count(cases_in),
        kpi_auto=_case_count(cases_in & Q(route=Route.AUTO)),
        kpi_audited=_case_count(cases_in & Q(audit_status__in=[AuditStatus.CONFIRMED, AuditStatus.FLAGGED])),
        kpi_flagged=_case_count(cases_in & Q(audit_status=AuditStatus.FLAGGED)),
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


def live_shadow_agreement(version: ModelVersion) -> dict[str, Any]:
    """How a built-in version in shadow agrees with people on live traffic, beside the answers the same cases came
    with (the active version's): over the cases it predicted that have a current human label (the last human word,
    DESIGN.md, Feedback loop), n and each side's agreement with its Wilson interval. One aggregate query."""
    counts = ShadowPrediction.objects.filter(model_version=version, case__labels__superseded=False).aggregate(
        n=Count("id"),
        shadow=Count("id", filter=Q(label=F("case__labels__label"))),
        case=Count("id", filter=Q(case__labels__label=KeyTextTransform("label", "case__output"))),
    )
    n = int(counts["n"])
    return {
        "n": n,
        "shadow": rate_with_interval(int(counts["shadow"]), n),
        "case": rate_with_interval(int(counts["case"]), n),
        "answered_by": sorted(
            set(
                ShadowPrediction.objects.filter(model_version=version)
                .order_by()
                .values_list("case__model_version__name", "case__model_version__version")
                .distinct()[:5]
            )
        ),
    }
