"""Every KPI of a category over a window at once (DESIGN.md, KPIs), with DESIGN.md's keys: the dashboard's and
the metrics API's read, one read of the window's parts (`metrics.kpis.rollup.window_parts`) with each figure
derived from it (`metrics.kpis.figures`), and what the figures are made of beside them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from cases.choices import Route
from governance.models import Category
from metrics.choices import AlertKind
from metrics.kpis.figures import (
    advisor_figures,
    case_figures,
    decision_figures,
    fairness_figures,
    psi_from_counts,
    rate,
    resolution_figures,
    review_seconds_figures,
    reviewer_figures,
    sensitive_label_figures,
    time_saved_minutes,
)
from metrics.kpis.parts import SECTIONS, VERSION_FIELDS
from metrics.kpis.rollup import window_parts
from metrics.kpis.single_figures import agreement, queues
from metrics.kpis.visibility import reviewers_visible_to, sees_every_reviewer
from metrics.kpis.window import Window
from metrics.models import AlertRule

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def _only_own(user: User | AnonymousUser | None, category: Category) -> str | None:
    """Whose pairs `agreement` keeps for this user: None (everyone's) for jobs and for those who see every
    reviewer, their own username otherwise (an anonymous user's is "", which matches nobody)."""
    if user is None or sees_every_reviewer(user, category):
        return None
    return user.get_username() if user.is_authenticated else ""


def category_kpis(
    category: Category, window: Window, *, user: User | AnonymousUser | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every KPI of DESIGN.md for one category over one window, with DESIGN.md's keys.

    `user` narrows `reviewers` to what that person may see (None: everyone, for jobs and snapshots)."""
    return category_figures(category, window, user=user, now=now)[0]


def category_figures(
    category: Category, window: Window, *, user: User | AnonymousUser | None = None, now: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`category_kpis`, and what its figures are made of, from the same queries: the counts of each rate's part and
    whole, the reference histogram of `drift_psi` (`previous_histogram`) and each model version's counts
    (`versions`, by id), for a page that shows "14 of 120" beside 12 %, the two histograms side by side and a
    canary beside the active version, without counting twice."""
    now = now or timezone.now()
    parts = window_parts(category, window, SECTIONS)
    previous = window_parts(category, window.previous(), frozenset({"cases"})).histogram
    cases = case_figures(parts)
    decided = decision_figures(parts)
    resolved = resolution_figures(parts, window)
    advice = advisor_figures(parts, category, window, review_seconds_per_case=decided["seconds_per_decision"])
    kappas = agreement(category, window)
    people = reviewer_figures(parts, kappas=kappas, **_rubber_stamp_rule(category))
    current = parts.histogram
    labels = list(category.policy.sensitive_labels)
    figures = {
        "category": category.slug,
        "window": window.as_dict(),
        "volume": cases["volume"],
        "routes": cases["routes"],
        "auto_rate": cases["auto_rate"],
        "override_rate": decided["override_rate"],
        "escalation_rate": cases["escalation_rate"],
        **{key: value for key, value in resolved.items() if key != "resolved_by_people"},
        "review_seconds": review_seconds_figures(parts),
        "time_saved_minutes": time_saved_minutes(category, cases["volume"], decided["seconds_spent"]),
        "audited_accuracy": decided["audited_accuracy"],
        "sla_breach_rate": rate(parts.breaches, cases["waited"]),
        "queues": queues(category, now),
        "confidence_histogram": current,
        "drift_psi": psi_from_counts(previous, current),
        "sensitive_labels": sensitive_label_figures(parts, labels) if labels else {},
        "fairness": fairness_figures(parts),
        "reviewers": people if user is None else reviewers_visible_to(people, user, category),
        "shadow_agreement": decided["shadow_agreement"],
        "agreement": kappas.as_dict(only_for=_only_own(user, category)),
        "threshold_advisor": advice,
    }
    counts = {
        "volume": cases["volume"],
        "auto": cases["routes"][Route.AUTO],
        "escalated": cases["escalated"],
        "waited": cases["waited"],
        "breaches": parts.breaches,
        "verdicts": decided["verdicts"],
        "overridden": decided["overridden"],
        "audits": decided["audits"],
        "confirmed": decided["confirmed"],
        "seconds_spent": decided["seconds_spent"],
        "resolved_by_people": resolved["resolved_by_people"],
        "previous_histogram": previous,
        "versions": {
            int(version): dict(zip(VERSION_FIELDS, values, strict=True)) for version, values in parts.versions.items()
        },
    }
    return figures, counts


def _rubber_stamp_rule(category: Category) -> dict[str, Any]:
    """The category's own rubber-stamping thresholds (its alert rule), or DESIGN.md's defaults."""
    rule = (
        AlertRule.objects.filter(category=category, kind=AlertKind.RUBBER_STAMPING)
        .only("threshold", "min_count")
        .first()
    )
    if rule is None:
        return {}
    return {"approval_at": rule.threshold, "min_decisions": rule.min_count}
