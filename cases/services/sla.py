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

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.text import Truncator

from cases.choices import OPEN_STATUSES, Priority
from cases.links import queue_work_link
from cases.models import SLA_WARN_SHARE, Case, Queue, SlaBreach
from cases.permissions import users_who_work
from governance import events
from governance.choices import AuditKind
from governance.history import history_for_rows, system_user
from governance.insert_select import insert_select
from governance.lookups import InIds
from governance.models import Notification
from governance.services.notifications import notify_each

JOB_REASON = "SLA sweep"
SUBJECT_LENGTH = Notification._meta.get_field("subject").max_length or 200


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
    """Warn, move and record breaches for every queue; returns what it did. Each person who works a queue with
    news gets one notice for the whole sweep, sent once the moves are written."""
    now = now or timezone.now()
    queues = {q.pk: q for q in Queue.objects.select_related("category", "next_queue__category")}
    result = SweepResult()
    digest = Digest()
    result.warned = _warn(queues, now, digest)
    _move_overdue(queues, now, result, digest)
    digest.send()
    return result


@dataclass(frozen=True)
class NoticeLine:
    """One queue's news in a sweep: what its people are told, and where to act."""

    queue: Queue
    subject: str
    body: str
    breach: bool


@dataclass
class Digest:
    """A sweep's notices, gathered per person: someone who works five queues gets one notice, not five."""

    people: dict[int, User] = field(default_factory=dict)
    lines: dict[int, list[NoticeLine]] = field(default_factory=lambda: defaultdict(list))

    def tell(self, line: NoticeLine) -> None:
        """Tell the people who work `line.queue` (one grant lookup per queue with news; an idle sweep makes none)."""
        for user in users_who_work(line.queue):
            self.people[user.pk] = user
            self.lines[user.pk].append(line)

    def send(self) -> None:
        notify_each([self._notice(self.people[pk], lines) for pk, lines in self.lines.items()])

    @staticmethod
    def _notice(user: User, lines: list[NoticeLine]) -> Notification:
        first = lines[0]
        subject = first.subject if len(lines) == 1 else f"SLA sweep: {first.subject}, and {len(lines) - 1} more"
        slugs = {line.queue.category.slug for line in lines}
        return Notification(
            user=user,
            subject=Truncator(subject).chars(SUBJECT_LENGTH),
            body="\n\n".join(f"{line.subject}. {line.body}" if len(lines) > 1 else line.body for line in lines),
            link=queue_work_link(first.queue),
            kind="sla.breach" if any(line.breach for line in lines) else "sla.warning",
            category_slug=slugs.pop() if len(slugs) == 1 else "",
        )


def _warn(queues: dict[int, Queue], now: datetime, digest: Digest) -> int:
    """Mark cases past 80 % of their SLA (once per due time) and tell each queue's people how many."""
    warned_total = 0
    for queue in queues.values():
        # A conditional UPDATE: two workers at once warn each case once, and only the one that marked it notifies.
        # It reads a partial index of the cases not warned yet (cases_case_to_warn), so an idle sweep costs an
        # index probe per queue, not a scan of the queue's backlog.
        warned = Case.objects.to_warn_in(queue, now).update(sla_warned_at=now)
        if warned:
            warned_total += warned
            digest.tell(
                NoticeLine(
                    queue=queue,
                    subject=f"{warned} case(s) in {queue.slug} will breach their SLA soon",
                    body=(
                        f"{SLA_WARN_SHARE:.0%} of the {queue.sla} SLA has passed for {warned} case(s) waiting in "
                        f"{queue.name}."
                    ),
                    breach=False,
                )
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
def _move_overdue(queues: dict[int, Queue], now: datetime, result: SweepResult, digest: Digest) -> None:
    """Record the breaches and move the overdue cases, set-wise, whatever their number: one INSERT ... SELECT of the
    breaches, one UPDATE of the moves, one insert each of history rows and audit events (one event per case, so
    each case's own audit trail shows its breach)."""
    rows = list(
        overdue_unheld(now).select_for_update(skip_locked=True, of=("self",)).values_list("id", "queue_id", "due_at")
    )
    if not rows:
        return
    actor = system_user()
    by_queue: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for case_id, queue_id, due_at in rows:
        by_queue[queue_id].append((case_id, due_at))
    # Before the moves: a breach row is the case as it waited (its queue and due time), read in the database.
    result.breached = _record_breaches([case_id for case_id, _, _ in rows], queues, now)

    specs: list[events.EventSpec] = []
    moved_ids: list[int] = []
    sources: list[Queue] = []
    for queue_id, group in by_queue.items():
        queue = queues[queue_id]
        target = queue.next_queue
        ids = [case_id for case_id, _ in group]
        if target is not None:
            moved_ids += ids
            sources.append(queue)
            result.moved_by_queue[f"{queue.slug} -> {target.slug}"] = len(ids)
            digest.tell(
                NoticeLine(
                    queue=target,
                    subject=f"{len(ids)} overdue case(s) moved from {queue.slug} to {target.slug}",
                    body=f"They breached the {queue.sla} SLA of {queue.name} and are now urgent in {target.name}.",
                    breach=True,
                )
            )
        common = {
            "queue": queue.slug,
            "moved_to": target.slug if target else None,
            "priority": Priority.URGENT if target else None,
        }
        specs += [
            events.EventSpec(
                kind=AuditKind.SLA_BREACHED,
                category_slug=queue.category.slug,
                case_id=case_id,
                payload={
                    **common,
                    "due_at": due_at.isoformat(),
                    "reason": f"{JOB_REASON}: overdue by {_overdue_by(due_at, now)}",
                },
            )
            for case_id, due_at in group
        ]
    if moved_ids:
        _move(moved_ids, sources, now)
        history_for_rows(
            Case.objects.filter(InIds(models.F("pk"), moved_ids)),
            user=actor,
            reason=f"{JOB_REASON}: overdue, moved on",
            date=now,
        )
    events.record_many(specs)
    result.moved = len(moved_ids)


def _record_breaches(ids: list[int], queues: dict[int, Queue], now: datetime) -> int:
    """One `SlaBreach` per case of `ids` (locked, not moved yet), in one INSERT ... SELECT: the case's queue and
    due time as the database holds them, and where the sweep moves it (its queue's next queue, as loaded for this
    sweep). ON CONFLICT DO NOTHING leaves a breach already recorded as it is: the selection skips those, and this
    holds even if two sweeps ever met on one case. Returns the number of cases, recorded now or before."""
    nowhere = Cast(models.Value(None), output_field=models.BigIntegerField())
    moved_to = models.Case(
        *[models.When(queue_id=pk, then=models.Value(q.next_queue_id)) for pk, q in queues.items() if q.next_queue_id],
        default=nowhere,
        output_field=models.BigIntegerField(),
    )
    selection = (
        Case.objects.filter(InIds(models.F("pk"), ids))
        .annotate(breach_moved_to=moved_to)
        .values_list("id", "queue_id", "due_at", "breach_moved_to")
    )
    insert_select(
        SlaBreach,
        ["case", "queue", "due_at", "moved_to", "detected_at"],
        selection,
        constants=[now],
        ignore_conflicts=True,
    )
    return len(ids)


def _move(ids: list[int], sources: list[Queue], now: datetime) -> None:
    """Move the cases of `ids`, waiting in the `sources` queues, each to its queue's next queue with that queue's
    fresh due time and urgent priority; claims (all expired here) are cleared. An open case takes its new queue's
    waiting status; an auto-approved one waiting for its audit keeps its final status, only its audit moves on.

    One UPDATE for every source queue, each value chosen by the case's current queue (SET expressions read the row
    as it was): the rows are visited once, in the table's order, so each index page a move writes to is read and
    dirtied once per sweep rather than once per source queue."""
    moves = [(source, source.next_queue) for source in sources if source.next_queue is not None]

    def by_source(value: Callable[[Queue], Any], output_field: models.Field[Any, Any]) -> models.Case:
        """`value(target)` for a case in each source queue."""
        whens = [models.When(queue_id=source.pk, then=models.Value(value(target))) for source, target in moves]
        return models.Case(*whens, output_field=output_field)

    in_sources = [source.pk for source, _ in moves]
    Case.objects.filter(InIds(models.F("pk"), ids), queue_id__in=in_sources).waiting().update(
        status=models.Case(
            models.When(status__in=OPEN_STATUSES, then=by_source(lambda t: t.waiting_status, models.CharField())),
            default=models.F("status"),
        ),
        queue_id=by_source(lambda t: t.pk, models.BigIntegerField()),
        due_at=by_source(lambda t: now + t.sla, models.DateTimeField()),
        priority=Priority.URGENT,
        sla_warned_at=None,
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
    )


def _overdue_by(due_at: datetime, now: datetime) -> str:
    minutes = int((now - due_at).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
