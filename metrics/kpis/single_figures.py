"""KPIs read one at a time over a window, for the alert rules, the pause trigger and the snapshots: each reads
only the parts its figure is made of (`metrics.kpis.rollup.window_parts`) and derives it as `metrics.kpis.figures`
does; and the figures not made of parts: agreement (from the double reviews), refusals and batch approvals (from
the decisions) and the queues as they stand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from cases.models import Queue
from cases.selectors import queue_stats
from governance.models import Category
from metrics.kpis import conditions
from metrics.kpis.figures import (
    advisor_figures,
    case_figures,
    decision_figures,
    fairness_figures,
    resolution_figures,
    review_seconds_figures,
    reviewer_figures,
    sensitive_label_figures,
)
from metrics.kpis.rollup import window_parts
from metrics.kpis.window import Span, Window
from reviews.agreement import AgreementFigures, agreement_from_counts
from reviews.models import Decision, DoubleReview


def agreement(category: Category, window: Window) -> AgreementFigures:
    """Cohen's kappa of the double reviews whose second verdict was given in the window: over all of them, per
    reviewer pair and per reviewer, each with its n (one grouped query)."""
    paired = DoubleReview.objects.filter(
        category=category, second_at__gte=window.start, second_at__lt=window.end
    ).pair_counts()
    return agreement_from_counts(paired)


def case_counts(category: Category, window: Window) -> dict[str, Any]:
    return case_figures(window_parts(category, window, frozenset({"cases"})))


def decision_counts(category: Category, window: Window) -> dict[str, Any]:
    return decision_figures(window_parts(category, window, frozenset({"decisions"})))


def resolution(category: Category, window: Window) -> dict[str, Any]:
    return resolution_figures(window_parts(category, window, frozenset({"resolution"})), window)


def review_seconds(category: Category, window: Window) -> dict[str, Any]:
    return review_seconds_figures(window_parts(category, window, frozenset({"decisions"})))


def sla_breaches(category: Category, window: Window) -> int:
    """SLA breaches recorded in the window; over the cases that waited, the sla_breach_rate."""
    return window_parts(category, window, frozenset({"breaches"})).breaches


def confidence_histograms(
    category: Category, window: Window, reference: Window | None = None
) -> tuple[list[int], list[int]]:
    """Ten counts over [0, 1] of the window's confidences, and of the reference window's (the previous window
    of equal length unless told)."""
    reference = reference or window.previous()
    cases_only = frozenset({"cases"})
    return window_parts(category, window, cases_only).histogram, window_parts(category, reference, cases_only).histogram


def sensitive_label_rates(category: Category, window: Window) -> dict[str, dict[str, Any]]:
    labels = list(category.policy.sensitive_labels)
    if not labels:
        return {}
    return sensitive_label_figures(window_parts(category, window, frozenset({"decisions"})), labels)


def fairness(category: Category, window: Window) -> dict[str, Any]:
    return fairness_figures(window_parts(category, window, frozenset({"cases"})))


def reviewers(category: Category, window: Window, **rubber: Any) -> list[dict[str, Any]]:
    kappas = agreement(category, window)
    return reviewer_figures(window_parts(category, window, frozenset({"decisions"})), kappas=kappas, **rubber)


def threshold_advisor(category: Category, window: Window, *, review_seconds_per_case: float | None) -> list[Any]:
    parts = window_parts(category, window, frozenset({"cases"}))
    return advisor_figures(parts, category, window, review_seconds_per_case=review_seconds_per_case)


def refusal_counts(category: Category, window: Window) -> dict[str, int]:
    """The pause rule's figure (DESIGN.md, Time): the window's reviewed outputs (`reviewed`) and those not approved
    as proposed, audit findings included (`overridden`). One query."""
    return Decision.objects.filter(case__category=category).filter(Span.of(window).q("created_at")).override_counts()


def batch_decision_counts(category: Category, window: Window) -> dict[str, int]:
    """Per person, how many of the decisions their `reviewers` row counts in the window were approvals of a batch
    (what the rubber-stamp alert reports beside the total: a batch is many decisions, each with its share of the
    batch's time, never one). One query."""
    rows = (
        Decision.objects.filter(case__category=category, batch_id__isnull=False)
        .filter(conditions.reviewer_action(), Span.of(window).q("created_at"))
        .values("actor__username")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["actor__username"]: row["n"] for row in rows}


def queues(category: Category, now: datetime) -> list[dict[str, Any]]:
    """Each queue of the category as it stands now: depth, oldest age, overdue (three queries)."""
    rows = list(Queue.objects.filter(category=category).order_by("kind"))
    stats = queue_stats(rows, now)
    result = []
    for queue in rows:
        stat = stats[queue.pk]
        oldest = stat.oldest_created_at
        result.append(
            {
                "slug": queue.slug,
                "kind": queue.kind,
                "depth": stat.depth,
                "oldest_age_seconds": None if oldest is None else int((now - oldest).total_seconds()),
                "overdue": stat.overdue,
                "near_breach": stat.near_breach,
            }
        )
    return result
