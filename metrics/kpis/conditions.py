"""What each figure counts, said once: the conditions on cases and decisions that the KPI reads count by, and
the cases behind a figure that a dashboard number links to (`cases_behind`)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q

from cases.choices import AuditStatus, CaseStatus, QueueKind, Route
from cases.models import SlaBreach
from metrics.kpis.window import Window
from reviews.choices import Action
from reviews.models import Decision

# Human verdicts on a model output (DESIGN.md, override_rate): approve, correct, reject.
HUMAN_VERDICTS = (Action.APPROVE, Action.CORRECT, Action.REJECT)
AUDIT_VERDICTS = (Action.CONFIRM, Action.FLAG)
HUMAN_FINAL = (CaseStatus.APPROVED, CaseStatus.CORRECTED, CaseStatus.REJECTED)
# Made final, by a person or on its own (throughput, fairness).
MADE_FINAL = sorted({*HUMAN_FINAL, CaseStatus.AUTO_APPROVED})
ESCALATION_KINDS = (QueueKind.ESCALATION, QueueKind.EXPERT)


def entered_escalation() -> Q:
    """A case that entered an escalation or expert queue: it waits in one, the SLA sweep moved it up, or a person
    escalated it (a condition on Case)."""
    moved_up = SlaBreach.objects.filter(case=OuterRef("pk"), moved_to__kind__in=ESCALATION_KINDS)
    escalated_by_hand = Decision.objects.filter(case=OuterRef("pk"), action=Action.ESCALATE)
    return Q(queue__kind__in=ESCALATION_KINDS) | Exists(moved_up) | Exists(escalated_by_hand)


def acted_as_proposed() -> Q:
    """The model's output acted as proposed (a condition on Case): approved by a person or on its own, and not
    found wrong by an audit. Fairness's approval."""
    return Q(status__in=[CaseStatus.APPROVED, CaseStatus.AUTO_APPROVED]) & ~Q(audit_status=AuditStatus.FLAGGED)


def known_right() -> Q:
    """The model's output is known to be right (a condition on Case): a person approved it or an audit confirmed
    it. The threshold advisor's known outcomes are these and `known_wrong`."""
    return Q(status=CaseStatus.APPROVED) | Q(audit_status=AuditStatus.CONFIRMED)


def known_wrong() -> Q:
    return Q(status__in=[CaseStatus.CORRECTED, CaseStatus.REJECTED]) | Q(audit_status=AuditStatus.FLAGGED)


def non_shadow_verdict() -> Q:
    """A human verdict on a model output the reviewer saw (a condition on Decision): the override rate's whole."""
    return Q(action__in=HUMAN_VERDICTS) & ~Q(case__route=Route.SHADOW)


def shadow_verdict() -> Q:
    """A reviewer's own answer in blind review, recorded as approve (agrees) or correct (a condition on Decision)."""
    return Q(case__route=Route.SHADOW, action__in=[Action.APPROVE, Action.CORRECT])


def audit_verdict() -> Q:
    return Q(action__in=AUDIT_VERDICTS)


def reviewer_action() -> Q:
    """What a person's row in `reviewers` counts (a condition on Decision): verdicts and audits, by a person."""
    return Q(actor__isnull=False, action__in=[*HUMAN_VERDICTS, *AUDIT_VERDICTS])


# Each figure's cases, by the name a link carries (`?kpi=`), and what the list then shows, in words.
FIGURES_BEHIND: dict[str, str] = {
    "created": "created in the window",
    "final": "created in the window and made final",
    "resolved": "made final by a person in the window",
    "escalated": "created in the window that entered an escalation or expert queue",
    "verdict": "given a human verdict (approve, correct, reject) in the window",
    "overridden": "corrected or rejected by a person in the window",
    "audited": "audited in the window",
    "audit_flagged": "flagged by an audit in the window",
    "breached": "past their SLA in the window",
    "shadow": "given a reviewer's own answer in blind review in the window",
    "reviewed": "decided by the reviewer in the window",
}


def cases_behind(figure: str, window: Window, *, reviewer: str = "") -> Q:
    """The condition on Case that picks the cases a figure counts over `window` (with the category's own filter
    beside it), so a number on the dashboard opens the list it came from. A decision-based figure picks each case
    once, however many of its decisions count (the override rate counts decisions: a case corrected twice is one
    row here). `reviewer` (a username) is for `reviewed`, the cases of a person's row."""
    created = Q(created_at__gte=window.start, created_at__lt=window.end)
    if figure == "created":
        return created
    if figure == "final":
        return created & Q(status__in=MADE_FINAL)
    if figure == "resolved":
        return Q(decided_at__gte=window.start, decided_at__lt=window.end, status__in=HUMAN_FINAL)
    if figure == "escalated":
        return created & entered_escalation()
    if figure == "breached":
        return Q(
            Exists(
                SlaBreach.objects.filter(case=OuterRef("pk"), detected_at__gte=window.start, detected_at__lt=window.end)
            )
        )
    decided: dict[str, Q] = {
        "verdict": non_shadow_verdict(),
        "overridden": non_shadow_verdict() & ~Q(action=Action.APPROVE),
        "audited": audit_verdict(),
        "audit_flagged": Q(action=Action.FLAG),
        "shadow": shadow_verdict(),
        "reviewed": reviewer_action() & Q(actor__username=reviewer),
    }
    if figure not in decided:
        raise ValidationError({"kpi": f"{figure!r} is not a figure; choose one of {', '.join(FIGURES_BEHIND)}."})
    if figure == "reviewed" and not reviewer:
        raise ValidationError({"kpi_reviewer": "Name the reviewer whose cases to list."})
    in_window = Decision.objects.filter(
        decided[figure], case=OuterRef("pk"), created_at__gte=window.start, created_at__lt=window.end
    )
    return Q(Exists(in_window))
