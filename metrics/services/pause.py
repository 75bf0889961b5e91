"""The pause trigger: when humans keep refusing what a category's model proposes, automation stops.

Over the policy's window (never reaching back past the last resume), the share of reviewed outputs that were
not approved as proposed — corrected, rejected, or flagged by an audit — is compared with
`pause_rejection_rate`; with at least `pause_min_reviews` reviews and the share at or above it, the category
is paused (human-first), an incident is opened already contained, and the model stewards are told.
Runs after each human decision (enqueued after commit) and every 10 minutes; pausing twice is impossible
(`pause_category` locks the category and refuses a second pause), so concurrent checks are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.exceptions import Conflict
from governance.history import system_user
from governance.models import Category, Incident
from governance.permissions import MODEL_STEWARD
from governance.services import pause_category
from governance.services.incidents import open_incident
from governance.services.notifications import notify, users_in_role
from metrics import kpis
from reviews.choices import OVERRIDE_ACTIONS
from reviews.models import Decision


@dataclass(frozen=True)
class PauseEvidence:
    window_start: datetime
    reviewed: int
    not_as_proposed: int
    threshold: float
    min_reviews: int

    @property
    def rate(self) -> float:
        return self.not_as_proposed / self.reviewed if self.reviewed else 0.0

    @property
    def should_pause(self) -> bool:
        return self.reviewed >= self.min_reviews and self.rate >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "reviewed": self.reviewed,
            "not_as_proposed": self.not_as_proposed,
            "rate": round(self.rate, 4),
            "threshold": self.threshold,
            "min_reviews": self.min_reviews,
        }


def evidence_for(category: Category, now: datetime) -> PauseEvidence:
    policy = category.policy
    window_start = now - timedelta(hours=policy.pause_window_hours)
    if category.resumed_at and category.resumed_at > window_start:
        window_start = category.resumed_at  # a resume is a fresh start, not a re-pause on old evidence
    # Up to and including `now`: the decision that started this check may carry this very instant.
    counts = kpis.refusal_counts(category, kpis.Window(window_start, now + timedelta(microseconds=1)))
    return PauseEvidence(
        window_start=window_start,
        reviewed=counts["reviewed"],
        not_as_proposed=counts["overridden"],
        threshold=policy.pause_rejection_rate,
        min_reviews=policy.pause_min_reviews,
    )


def check_category(category_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Pause the category if its evidence says so; returns what it found and did."""
    now = now or timezone.now()
    category = Category.objects.select_related("policy").get(pk=category_id)
    if category.paused:
        return {"category": category.slug, "paused": False, "reason": "already paused"}
    evidence = evidence_for(category, now)
    if not evidence.should_pause:
        return {"category": category.slug, "paused": False, **evidence.as_dict()}
    reason = (
        f"Pause rule: {evidence.not_as_proposed} of {evidence.reviewed} reviewed outputs "
        f"({evidence.rate:.1%}) were not approved as proposed since {evidence.window_start:%Y-%m-%d %H:%M} UTC; "
        f"the limit is {evidence.threshold:.1%} over at least {evidence.min_reviews} reviews."
    )
    affected = (
        Decision.objects.filter(
            case__category=category, created_at__gte=evidence.window_start, action__in=sorted(OVERRIDE_ACTIONS)
        )
        .order_by("-created_at")
        .values_list("case_id", flat=True)[:200]
    )
    try:
        incident = pause_automation(
            category=category,
            reason=reason,
            title=f"{category.slug}: automation paused, {evidence.rate:.1%} of reviewed outputs refused",
            trigger="pause_rule",
            evidence=evidence.as_dict(),
            affected_case_ids=list(affected),
            contained_by="automation paused (human-first) by the pause rule",
            notify_subject=f"{category.slug} paused: {evidence.rate:.1%} of reviewed outputs refused",
        )
    except Conflict:
        return {"category": category.slug, "paused": False, "reason": "paused meanwhile by another check"}
    return {"category": category.slug, "paused": True, "incident_id": incident.pk, **evidence.as_dict()}


@transaction.atomic
def pause_automation(
    *,
    category: Category,
    reason: str,
    title: str,
    trigger: str,
    evidence: dict[str, Any],
    contained_by: str,
    notify_subject: str,
    affected_case_ids: list[int] | None = None,
) -> Incident:
    """Stop a category's automation because the system saw something wrong: pause it (as the system user),
    open an incident already contained, and tell the model stewards once this commits. The pause trigger and the
    alert rules both call this; a category already paused raises `Conflict` and nothing is written."""
    actor = system_user()  # jobs act as the system user in history and the audit trail
    pause_category(category=category, user=actor, reason=reason)
    incident = open_incident(
        category=category,
        title=title,
        user=actor,
        trigger=trigger,
        evidence=evidence,
        affected_case_ids=affected_case_ids or [],
        contained_by=contained_by,
        opened_by_pause=True,
    )
    link = reverse("admin:governance_incident_change", args=[incident.pk])
    transaction.on_commit(
        lambda: notify(
            users_in_role(MODEL_STEWARD),
            subject=notify_subject,
            body=reason + " Every case now goes to a person first. Investigate, then resume with a reason.",
            link=link,
            kind="category.paused",
            category_slug=category.slug,
        )
    )
    return incident


def check_all(*, now: datetime | None = None) -> list[dict[str, Any]]:
    return [check_category(pk, now=now) for pk in Category.objects.filter(paused=False).values_list("pk", flat=True)]
