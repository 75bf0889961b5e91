"""Claims: who holds a case, for how long, and claim-next that never hands one case to two reviewers.

Every function locks the case row first (`lock_case`), re-checks the state under the lock, and refuses with
`Conflict` (409) what another person changed in the meantime: a case already final, or held by someone else.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from cases.choices import OPEN_STATUSES, AuditStatus, CaseStatus
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from governance.exceptions import Conflict
from governance.history import history_for_rows, save_with_reason

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def claim_duration() -> timedelta:
    return timedelta(minutes=settings.HITL_CLAIM_MINUTES)


def opened_claim_duration() -> timedelta:
    """How long a claim lasts that the workplace made for the reviewer (save-and-next, skip) before they act on it:
    short, so a case opened behind a reviewer who then walks away goes back to the queue soon (DESIGN.md)."""
    return timedelta(minutes=settings.HITL_OPENED_CLAIM_MINUTES)


# `keep` rewrites a claim only once it has run this much of its course: renewals at most about once a minute.
KEEP_SLACK = timedelta(minutes=1)
# After the reviewer leaves the page without deciding, the claim lapses this much later rather than at once: a
# reload of the page (which leaves it too) finds the case still theirs, and the page renews it (`keep`).
LEAVE_GRACE = timedelta(seconds=10)


def may_work(user: User | AnonymousUser, queue: Queue | None) -> bool:
    """May the user claim and decide the cases of this queue? An object grant of `cases.work_queue` (to them or a
    group of theirs), as `visible_to` reads it, or a superuser."""
    if queue is None or not user.is_authenticated:
        return False
    return user.is_superuser or queue.pk in worked_queue_ids(user)


def is_waiting(case: Case) -> bool:
    """Does the case wait for a person (open, or auto-approved and waiting for its audit)?"""
    return case.status in OPEN_STATUSES or case.audit_status == AuditStatus.PENDING


def lock_case(case: Case | int) -> Case:
    """Lock the case row, then read it with its relations: a read that sees what it locked.

    Locking and joining in one statement is wrong on PostgreSQL: after waiting for another transaction's lock,
    the re-check sees the case's new columns (a new `claimed_by_id`) but the joined rows of the old snapshot
    (no such user). Taking the lock alone and reading afterwards sees one committed state.
    """
    pk = case if isinstance(case, int) else case.pk
    if not Case.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True):
        raise Case.DoesNotExist(f"No case {pk}.")
    return Case.objects.select_related("category", "queue", "model_version", "claimed_by").get(pk=pk)


def check_can_act(case: Case, user: User, now: datetime) -> None:
    if not is_waiting(case):
        raise Conflict(f"Case {case.pk} is already decided ({case.get_status_display().lower()}); nothing changed.")
    if not may_work(user, case.queue):
        raise PermissionDenied(f"You may not work the queue {case.queue.slug if case.queue else '(none)'!r}.")
    if case.is_held_by_other(user, now):
        holder = case.claimed_by.get_username() if case.claimed_by is not None else "someone else"
        until = f" until {timezone.localtime(case.claimed_until):%H:%M}" if case.claimed_until else ""
        raise Conflict(f"Case {case.pk} is claimed by {holder}{until}; nothing changed.")


def set_claim(case: Case, user: User | None, now: datetime, duration: timedelta | None = None) -> None:
    """Hold the case for `user` for `duration` (default: the claim duration), or free it (`user` None).

    A claim the user already holds never gets shorter this way: claim-next handing back a case held for
    15 minutes keeps those 15 minutes even when it asks for a short claim."""
    until = now + (duration or claim_duration()) if user is not None else None
    if until is not None and user is not None and case.holder_id_at(now) == user.pk:
        assert case.claimed_until is not None
        until = max(until, case.claimed_until)
    case.claimed_by = user
    case.claimed_until = until
    if case.status in OPEN_STATUSES:  # an auto case waiting for audit keeps its final status
        # An open case always sits in a queue; `Case.queue` is nullable only for cases decided automatically.
        case.status = CaseStatus.CLAIMED if user is not None else case.queue.waiting_status  # type: ignore[union-attr]


@transaction.atomic
def claim(*, case: Case | int, user: User) -> Case:
    """Hold the case for `user` for the claim duration (default 15 minutes); renewing one's own claim is fine."""
    now = timezone.now()
    case = lock_case(case)
    check_can_act(case, user, now)
    set_claim(case, user, now)
    save_with_reason(case, user=user, reason="Claimed")
    return case


@transaction.atomic
def release(*, case: Case | int, user: User) -> Case:
    """Give the case back to its queue. Only its holder may release it (an escalation manager reassigns)."""
    now = timezone.now()
    case = lock_case(case)
    if not may_work(user, case.queue):
        raise PermissionDenied("You may not work this case's queue.")
    if case.holder_id_at(now) != user.pk:
        raise Conflict(f"Case {case.pk} is not claimed by you; nothing to release.")
    set_claim(case, None, now)
    save_with_reason(case, user=user, reason="Released")
    return case


@transaction.atomic
def keep(*, case: Case | int, user: User) -> Case:
    """The holder is at work on the case (the review page saw a key, a click, a scroll): the claim runs the full
    claim duration from now. Only a claim the user still holds is kept; a lapsed one is not silently re-taken.
    A claim with nearly the full duration left is not written again, so a busy page costs no history rows."""
    now = timezone.now()
    case = lock_case(case)
    if not may_work(user, case.queue):
        raise PermissionDenied("You may not work this case's queue.")
    if not is_waiting(case) or case.holder_id_at(now) != user.pk:
        raise Conflict(f"Case {case.pk} is not claimed by you; nothing to keep.")
    assert case.claimed_until is not None
    if case.claimed_until - now >= claim_duration() - KEEP_SLACK:
        return case
    case.claimed_until = now + claim_duration()
    save_with_reason(case, user=user, reason="Claim kept (reviewer at work)")
    return case


@transaction.atomic
def leave(*, case: Case | int, user: User) -> bool:
    """The reviewer left the case's page without deciding: a claim they hold lapses in a few seconds
    (`LEAVE_GRACE`), so the case is free for the next reviewer. Nothing to do (False) when they hold no claim on it:
    they decided it, released it, or it lapsed already."""
    now = timezone.now()
    case = lock_case(case)
    if not may_work(user, case.queue) or not is_waiting(case) or case.holder_id_at(now) != user.pk:
        return False
    assert case.claimed_until is not None
    case.claimed_until = min(case.claimed_until, now + LEAVE_GRACE)
    save_with_reason(case, user=user, reason="Left without deciding: claim lapses")
    return True


def claimable_in(queue: Queue, now: datetime) -> Any:
    """The queue's waiting cases nobody holds (or whose claim expired), most urgent first, then by due time."""
    return Case.objects.waiting_in(queue).unheld(now).order_by("-priority", "due_at", "id")


def held_by_in(queue: Queue, user: User, now: datetime) -> Any:
    """The queue's waiting cases `user` holds right now, most urgent first, then by due time."""
    return Case.objects.waiting_in(queue).held(now).filter(claimed_by=user).order_by("-priority", "due_at", "id")


@transaction.atomic
def claim_next(
    *, user: User, queue: Queue, duration: timedelta | None = None, passing: int | None = None
) -> Case | None:
    """The reviewer's next case of the queue, claimed: one they already hold first (so an abandoned claim comes
    back to its holder instead of staying locked), else the most urgent unclaimed one, atomically: two reviewers
    never get the same case. `duration` shortens a new claim (save-and-next: `opened_claim_duration`); `passing`
    is a case the reviewer is moving away from, never handed back.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent callers take different rows without waiting.
    SQLite: the transaction takes the database's write lock at BEGIN (IMMEDIATE), so callers run one at a time.
    """
    if not may_work(user, queue):
        raise PermissionDenied(f"You may not work the queue {queue.slug!r}.")
    now = timezone.now()
    own = held_by_in(queue, user, now)
    free = claimable_in(queue, now)
    if passing is not None:
        own, free = own.exclude(pk=passing), free.exclude(pk=passing)
    found = own.values_list("pk", flat=True).first()
    if found is None:
        return _take_next(free, user=user, until=now + (duration or claim_duration()), now=now)
    case = lock_case(found)
    if case.is_held_by_other(user, now) or not is_waiting(case):
        # The case changed between the unlocked read of the user's own claims and the lock (their own decision
        # in another tab, or their claim running out and someone taking it): start again; it is ruled out now.
        return claim_next(user=user, queue=queue, duration=duration, passing=passing)
    set_claim(case, user, now, duration)
    save_with_reason(case, user=user, reason="Claimed (next in queue)")
    return case


def _take_next(free: QuerySet[Case], *, user: User, until: datetime, now: datetime) -> Case | None:
    """Claim the first of `free` for `user` in one statement, its history row in a second, then read it back.

    `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id`: the row is found, locked and
    claimed in one round trip, and concurrent callers skip each other's rows instead of waiting (PostgreSQL; SQLite
    runs one writer at a time). Django's update() cannot say which row it changed, hence the statement is built
    here from the queryset's own SQL.
    """
    pick_sql, pick_params = (
        free.select_for_update(skip_locked=True, of=("self",)).values("pk")[:1].query.sql_with_params()
    )
    connection = connections[free.db]
    quote = connection.ops.quote_name
    status = quote("status")
    open_statuses = sorted(OPEN_STATUSES)
    sql = (
        f"UPDATE {quote(Case._meta.db_table)} SET {quote('claimed_by_id')} = %s, {quote('claimed_until')} = %s, "
        f"{quote('updated_at')} = %s, {status} = CASE WHEN {status} IN ({', '.join(['%s'] * len(open_statuses))}) "
        f"THEN %s ELSE {status} END "
        f"WHERE {quote('id')} = ({pick_sql}) RETURNING {quote('id')}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [user.pk, adapt(until), adapt(now), *open_statuses, CaseStatus.CLAIMED, *pick_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    taken = Case.objects.filter(pk=row[0])
    history_for_rows(taken, user=user, reason="Claimed (next in queue)", date=now)
    return taken.select_related("category", "queue", "model_version", "claimed_by").get()


def skip(*, case: Case | int, user: User, duration: timedelta | None = None) -> Case | None:
    """Move on to the queue's next case without deciding this one: claim the next (any but this one), then give
    this one back if the user held it. Returns the case now claimed, or None when no other case waits."""
    pk = case if isinstance(case, int) else case.pk
    current = Case.objects.select_related("queue").get(pk=pk)
    if current.queue is None:
        raise Conflict(f"Case {pk} is in no queue; there is no next case.")
    nxt = claim_next(user=user, queue=current.queue, duration=duration, passing=pk)
    if Case.objects.filter(pk=pk, claimed_by=user).held(timezone.now()).exists():
        release(case=pk, user=user)
    return nxt
