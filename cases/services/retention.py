"""Retention (DESIGN.md, Audit and privacy): after its category's retention days, a case keeps only the redacted
form of its input.

`purge_expired_inputs` replaces the raw `input` of every case older than its category's `retention_days` with
`governance.pii.redact(input)`, in the case and in every past version simple-history kept of it. Decisions,
outputs, routing and the audit chain are untouched (no audit payload holds an input). Each purged case gets a
history row naming who purged it (the system user at night, the data curator by hand) and why; each category
that had something to purge gets one audit event with the count and the cutoff.

Idempotent without a marker on the case: an input is purged when redacting it changes nothing, so a second run
finds nothing to do and writes nothing. Two runs at once take different rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, re-checked under the lock; SQLite runs one writer at a time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from cases.models import Case
from governance import events
from governance.choices import AuditKind
from governance.history import short_reason, system_user
from governance.models import Category
from governance.permissions import may_purge_data
from governance.pii import redact

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("hitl.jobs")

DEFAULT_BATCH_SIZE = 1000


def purge_reason(retention_days: int) -> str:
    return f"Retention purge ({retention_days} days)"


@dataclass(frozen=True)
class CategoryPurge:
    """What one category's purge did."""

    category: str
    retention_days: int
    cutoff: datetime
    purged: int
    first_case_id: int | None = None
    last_case_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat(),
            "purged": self.purged,
            "first_case_id": self.first_case_id,
            "last_case_id": self.last_case_id,
        }


def retention_cutoff(category: Category, now: datetime) -> datetime:
    """Cases created before this instant are past the category's retention."""
    return now - timedelta(days=category.retention_days)


def purge_preview(now: datetime) -> list[tuple[Category, datetime, int]]:
    """Each category with its cutoff and how many of its cases were created before it (what a purge looks at)."""
    return [
        (category, cutoff, Case.objects.filter(category=category, created_at__lt=cutoff).count())
        for category in Category.objects.order_by("slug").only("slug", "name", "retention_days")
        for cutoff in [retention_cutoff(category, now)]
    ]


def purge_expired_inputs(
    *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE, user: User | None = None
) -> dict[str, Any]:
    """Replace the raw input of every case past its category's retention by its redacted form.

    `user` is whoever runs it by hand, who must be a data curator or a superuser; None for the nightly job, whose
    history rows name the system user. Returns a summary per category and in total.
    """
    if user is not None and not may_purge_data(user):
        raise PermissionDenied("Only data curators and superusers may purge case inputs.")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    history_user = user or system_user()
    categories = Category.objects.order_by("slug").only("pk", "slug", "pii_fields", "retention_days")
    results = [
        _purge_category(category, now=now, batch_size=batch_size, user=user, history_user=history_user)
        for category in categories
    ]
    return {
        "ok": True,
        "now": now.isoformat(),
        "purged": sum(result.purged for result in results),
        "categories": {result.category: result.as_dict() for result in results},
    }


@transaction.atomic
def _purge_category(
    category: Category, *, now: datetime, batch_size: int, user: User | None, history_user: User
) -> CategoryPurge:
    """One category in one transaction: its cases, their history and its audit event commit together or not at all."""
    cutoff = retention_cutoff(category, now)
    reason = purge_reason(category.retention_days)
    expired = Case.objects.filter(category_id=category.pk, created_at__lt=cutoff).order_by("pk")
    purged: list[int] = []
    last_pk = 0
    while True:
        # Read the inputs alone first: most expired cases were purged on an earlier night and need nothing more.
        rows = list(expired.filter(pk__gt=last_pk).values_list("pk", "input")[:batch_size])
        if not rows:
            break
        last_pk = rows[-1][0]
        raw = [pk for pk, value in rows if redact(value, pii_fields=category.pii_fields) != value]
        if raw:
            purged += _purge_cases(raw, category=category, now=now, reason=reason, history_user=history_user)
    result = CategoryPurge(
        category=category.slug,
        retention_days=category.retention_days,
        cutoff=cutoff,
        purged=len(purged),
        first_case_id=min(purged, default=None),
        last_case_id=max(purged, default=None),
    )
    if purged:
        events.record(
            AuditKind.PURGE,
            actor=user,
            category_slug=category.slug,
            payload={
                "field": "input",
                "cases": result.purged,
                "retention_days": category.retention_days,
                "cutoff": cutoff.isoformat(),
                "first_case_id": result.first_case_id,
                "last_case_id": result.last_case_id,
                "reason": reason,
            },
        )
        logger.info("%s: purged the input of %d case(s) created before %s", category.slug, len(purged), cutoff)
    return result


def _purge_cases(ids: list[int], *, category: Category, now: datetime, reason: str, history_user: User) -> list[int]:
    """Redact these cases' inputs (and their past versions); returns the ids actually changed."""
    # Under the row lock, check again: another run may have purged a case since it was read.
    locked = Case.objects.select_for_update(skip_locked=True).filter(pk__in=ids).order_by("pk")
    changed: list[Case] = []
    for case in locked:
        redacted = redact(case.input, pii_fields=category.pii_fields)
        if redacted != case.input:
            case.input = redacted
            case.updated_at = now
            changed.append(case)
    if not changed:
        return []
    _redact_past_versions([case.pk for case in changed], pii_fields=category.pii_fields)
    bulk_update_with_history(
        changed,
        Case,
        ["input", "updated_at"],
        default_user=history_user,
        default_change_reason=short_reason(reason),
        default_date=now,
    )
    return [case.pk for case in changed]


def _redact_past_versions(case_ids: list[int], *, pii_fields: list[str]) -> None:
    """The raw input also sits in every history row of the case: those are redacted in place, or the purge would
    leave the data it exists to remove (and the history page would show it as a change)."""
    historical = Case.history.model
    versions = list(historical.objects.filter(id__in=case_ids).only("history_id", "input"))
    stale = []
    for version in versions:
        redacted = redact(version.input, pii_fields=pii_fields)
        if redacted != version.input:
            version.input = redacted
            stale.append(version)
    historical.objects.bulk_update(stale, ["input"], batch_size=DEFAULT_BATCH_SIZE)
