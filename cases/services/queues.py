"""The queues of a category: the five every new category gets, and the SLA and overflow its owner sets."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from cases.choices import QueueKind
from cases.models import Queue
from governance import events
from governance.choices import AuditKind
from governance.history import require_reason, save_with_reason
from governance.models import Category
from governance.permissions import can_change_category

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The five queues every new category gets (DESIGN.md, REST API v1): kind -> (allow batch, overflow kind).
DEFAULT_QUEUES: dict[str, tuple[bool, str | None]] = {
    QueueKind.QUICK: (True, QueueKind.ESCALATION),
    QueueKind.FULL: (False, QueueKind.ESCALATION),
    QueueKind.ESCALATION: (False, None),
    QueueKind.EXPERT: (False, None),
    QueueKind.AUDIT: (False, None),
}


@transaction.atomic
def create_default_queues(*, category: Category, user: User | None) -> list[Queue]:
    """The category's quick, full, escalation, expert and audit queues; quick and full overflow to escalation."""
    slas: dict[str, timedelta] = settings.HITL_DEFAULT_QUEUE_SLAS
    queues: dict[str, Queue] = {}
    for kind, (allow_batch, _) in DEFAULT_QUEUES.items():
        queue = Queue(
            slug=f"{category.slug}-{kind}",
            name=f"{category.name}: {QueueKind(kind).label}",
            category=category,
            kind=kind,
            sla=slas[kind],
            allow_batch=allow_batch,
        )
        save_with_reason(queue, user=user, reason="Default queue of a new category")
        queues[kind] = queue
    for kind, (_, overflow) in DEFAULT_QUEUES.items():
        if overflow:
            queues[kind].next_queue = queues[overflow]
            save_with_reason(
                queues[kind], user=user, reason="Overflow of a default queue", update_fields=["next_queue"]
            )
    return list(queues.values())


# What the owner of a queue's category may change on it (its category and kind are what it is).
EDITABLE_QUEUE_FIELDS = ("sla", "next_queue")
# An SLA longer than this is no SLA: nothing would ever be overdue.
MAX_QUEUE_SLA = timedelta(days=30)


def _overflow_problem(queue: Queue, target: Queue | None) -> str:
    """Why `target` cannot be where `queue`'s overdue cases go, or ""."""
    if target is None:
        return ""
    if target.category_id != queue.category_id:
        return f"{target.slug} belongs to another category; overdue cases stay within {queue.category.slug}."
    chain: Queue | None = target
    seen = {queue.pk}
    while chain is not None:
        if chain.pk in seen:
            return (
                f"{target.slug} leads back to {queue.slug}: overdue cases would go round in circles. "
                "Choose a queue whose overflow does not lead back here."
            )
        seen.add(chain.pk)
        chain = chain.next_queue
    return ""


def check_queue_changes(queue: Queue, changes: dict[str, Any]) -> None:
    """Refuse an SLA out of range, or an overflow to another category's queue or one that leads back here
    (ValidationError naming the field); the admin's form asks this before the service runs."""
    if "sla" in changes:
        sla = changes["sla"]
        if not isinstance(sla, timedelta) or not timedelta(0) < sla <= MAX_QUEUE_SLA:
            raise ValidationError({"sla": f"An SLA is a duration above 0 and at most {MAX_QUEUE_SLA.days} days."})
    if "next_queue" in changes:
        problem = _overflow_problem(queue, changes["next_queue"])
        if problem:
            raise ValidationError({"next_queue": problem})


@transaction.atomic
def update_queue(*, queue: Queue, user: User, changes: dict[str, Any], reason: str) -> Queue:
    """Change a queue's SLA or where its overdue cases go, with a reason in its history and the audit trail.

    Needs `governance.change_category` on the queue's category (its product owner). Cases already waiting keep the
    due time they were given; cases that arrive from now on get the new SLA, as a new policy version applies to
    new cases only.
    """
    if not can_change_category(user, queue.category):
        raise PermissionDenied(f"Changing the queues of {queue.category.slug!r} needs governance.change_category.")
    reason = require_reason(reason)
    unknown = sorted(set(changes) - set(EDITABLE_QUEUE_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: f"Not editable; a queue's editable fields are {EDITABLE_QUEUE_FIELDS}."})
    # NO KEY: a case's foreign-key check (key share) on the queue must not wait for this lock (see pause_category).
    locked = Queue.objects.select_for_update(of=("self",), no_key=True)
    queue = locked.select_related("category", "next_queue").get(pk=queue.pk)
    check_queue_changes(queue, changes)
    before = {"sla": queue.sla, "next_queue": queue.next_queue}
    for name, value in changes.items():
        setattr(queue, name, value)
    changed = {
        name: [_plain(before[name]), _plain(getattr(queue, name))]
        for name in EDITABLE_QUEUE_FIELDS
        if before[name] != getattr(queue, name)
    }
    if not changed:
        raise ValidationError({"non_field_errors": "Nothing changed: the queue already has these values."})
    save_with_reason(queue, user=user, reason=reason)
    events.record(
        AuditKind.QUEUE_CHANGED,
        actor=user,
        category_slug=queue.category.slug,
        payload={"queue": queue.slug, "changes": changed, "reason": reason},
    )
    return queue


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Queue):
        return value.slug
    return value
