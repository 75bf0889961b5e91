"""The SLA sweep (every minute): warn at 80 % of a queue's SLA, move overdue cases on, record every breach.

An overdue case that nobody holds moves to its queue's next queue with priority `urgent` and a fresh due time
from that queue's SLA; the breach is recorded once per case and due time (`SlaBreach`) with an audit event, and
the next queue's people are told. A case in a queue with nowhere to go next stays put, its breach recorded
once. A case someone is working (an unexpired claim) is left to them; it moves on a later sweep if still late.

Running the sweep twice changes nothing the second time: moved cases have a new due time, warned ones carry
`sla_warned_at`, and breaches already recorded are skipped. Two workers sweeping at once take different rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite runs one writer at a time).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from cases.choices import OPEN_STATUSES, AuditStatus, Priority
from cases.links import queue_work_link
from cases.models import SLA_WARN_SHARE, Case, Queue, SlaBreach
from cases.permissions import users_who_work
from governance import events
from governance.choices import AuditKind
from governance.history import system_user
from governance.services.notifications import notify

JOB_REASON = "SLA sweep"


def waiting_status_for(queue: Queue) -> str:
    """The status of an unclaimed case waiting in this queue (`Queue.waiting_status`)."""
    return queue.waiting_status


@dataclass
class SweepResult:
    warned: int = 0
    moved: int = 0
    breached: int = 0
    moved_by_queue: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "warned": self.warned,
            "moved": self.moved,
            "breached": self.breached,
            "moved_by_queue": self.moved_by_queue,
        }


def sweep(*, now: datetime | None = None) -> SweepResult:
    """Warn, move and record breaches for every queue; returns what it did."""
    now = now or timezone.now()
    queues = {q.pk: q for q in Queue.objects.select_related("category", "next_queue")}
    result = SweepResult()
    result.warned = _warn(queues, now)
    _move_overdue(queues, now, result)
    return result


def _warn(queues: dict[int, Queue], now: datetime) -> int:
    """Mark cases past 80 % of their SLA (once per due time) and tell each queue's people how many."""
    warned_total = 0
    for queue in queues.values():
        # A conditional UPDATE: two workers at once warn each case once, and only the one that marked it notifies.
        warned = Case.objects.to_warn_in(queue, now).update(sla_warned_at=now)
        if warned:
            warned_total += warned
            notify(
                users_who_work(queue),
                subject=f"{warned} case(s) in {queue.slug} will breach their SLA soon",
                body=(
                    f"{SLA_WARN_SHARE:.0%} of the {queue.sla} SLA has passed for {warned} case(s) waiting in "
                    f"{queue.name}."
                ),
                link=queue_work_link(queue),
                kind="sla.warning",
                category_slug=queue.category.slug,
            )
    return warned_total


def overdue_unheld(now: datetime) -> Any:
    """Waiting cases past their due time that nobody holds and whose breach is not recorded yet: what a sweep moves."""
    already_recorded = SlaBreach.objects.filter(case=OuterRef("pk"), due_at=OuterRef("due_at"))
    return (
        Case.objects.waiting()
        .filter(due_at__lt=now)
        .unheld(now)
        .exclude(Exists(already_recorded))
        .order_by("due_at", "id")
    )


@transaction.atomic
def _move_overdue(queues: dict[int, Queue], now: datetime, result: SweepResult) -> None:
    rows = list(
        overdue_unheld(now)
        .select_for_update(skip_locked=True, of=("self",))
        .values("id", "queue_id", "due_at", "status", "audit_status")
    )
    if not rows:
        return
    actor = system_user()
    by_queue: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_queue[row["queue_id"]].append(row)

    breaches: list[SlaBreach] = []
    specs: list[events.EventSpec] = []
    moved_ids: list[int] = []
    for queue_id, group in by_queue.items():
        queue = queues[queue_id]
        target = queue.next_queue
        ids = [row["id"] for row in group]
        if target is not None:
            _move(ids, target, now)
            moved_ids += ids
            result.moved_by_queue[f"{queue.slug} -> {target.slug}"] = len(ids)
        breaches += [
            SlaBreach(case_id=row["id"], queue=queue, due_at=row["due_at"], detected_at=now, moved_to=target)
            for row in group
        ]
        specs += [
            events.EventSpec(
                kind=AuditKind.SLA_BREACHED,
                category_slug=queue.category.slug,
                case_id=row["id"],
                payload={
                    "queue": queue.slug,
                    "due_at": row["due_at"].isoformat(),
                    "moved_to": target.slug if target else None,
                    "priority": Priority.URGENT if target else None,
                    "reason": f"{JOB_REASON}: overdue by {_overdue_by(row['due_at'], now)}",
                },
            )
            for row in group
        ]
    SlaBreach.objects.bulk_create(breaches, ignore_conflicts=True)
    if moved_ids:
        moved = list(Case.objects.filter(pk__in=moved_ids))
        Case.history.bulk_history_create(
            moved, default_user=actor, default_change_reason=f"{JOB_REASON}: overdue, moved on", default_date=now
        )
    events.record_many(specs)
    result.breached = len(breaches)
    result.moved = len(moved_ids)
    for queue_id, group in by_queue.items():
        if queues[queue_id].next_queue is not None:
            transaction.on_commit(functools.partial(_tell_next_queue, queues[queue_id], len(group)))


def _move(ids: list[int], target: Queue, now: datetime) -> None:
    """Move cases to `target` with a fresh due time and urgent priority; claims (all expired here) are cleared."""
    common = {
        "queue": target,
        "due_at": now + target.sla,
        "priority": Priority.URGENT,
        "sla_warned_at": None,
        "claimed_by": None,
        "claimed_until": None,
        "updated_at": now,
    }
    Case.objects.filter(pk__in=ids, status__in=OPEN_STATUSES).update(status=waiting_status_for(target), **common)
    # An auto-approved case waiting for its audit keeps its final status; only its audit moves on.
    Case.objects.filter(pk__in=ids, audit_status=AuditStatus.PENDING).exclude(status__in=OPEN_STATUSES).update(**common)


def _tell_next_queue(source: Queue, count: int) -> None:
    target = source.next_queue
    assert target is not None
    notify(
        users_who_work(target),
        subject=f"{count} overdue case(s) moved from {source.slug} to {target.slug}",
        body=f"They breached the {source.sla} SLA of {source.name} and are now urgent in {target.name}.",
        link=queue_work_link(target),
        kind="sla.breach",
        category_slug=target.category.slug,
    )


def _overdue_by(due_at: datetime, now: datetime) -> str:
    minutes = int((now - due_at).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
