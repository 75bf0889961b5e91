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
from django.db import transaction
from django.utils import timezone

from cases.choices import OPEN_STATUSES, AuditStatus, CaseStatus
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from cases.services.sla import waiting_status_for
from governance.exceptions import Conflict
from governance.history import save_with_reason

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def claim_duration() -> timedelta:
    return timedelta(minutes=settings.HITL_CLAIM_MINUTES)


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


def set_claim(case: Case, user: User | None, now: datetime) -> None:
    case.claimed_by = user
    case.claimed_until = now + claim_duration() if user is not None else None
    if case.status in OPEN_STATUSES:  # an auto case waiting for audit keeps its final status
        # An open case always sits in a queue; `Case.queue` is nullable only for cases decided automatically.
        case.status = CaseStatus.CLAIMED if user is not None else waiting_status_for(case.queue)  # type: ignore[arg-type]


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


def claimable_in(queue: Queue, now: datetime) -> Any:
    """The queue's waiting cases nobody holds (or whose claim expired), most urgent first, then by due time."""
    return Case.objects.waiting_in(queue).unheld(now).order_by("-priority", "due_at", "id")


@transaction.atomic
def claim_next(*, user: User, queue: Queue) -> Case | None:
    """Claim the most urgent unclaimed case of the queue, atomically: two reviewers never get the same case.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent callers take different rows without waiting.
    SQLite: the transaction takes the database's write lock at BEGIN (IMMEDIATE), so callers run one at a time.
    """
    if not may_work(user, queue):
        raise PermissionDenied(f"You may not work the queue {queue.slug!r}.")
    now = timezone.now()
    candidates = claimable_in(queue, now).select_for_update(skip_locked=True, of=("self",))
    case = candidates.first()
    if case is None:
        return None
    case = lock_case(case)
    set_claim(case, user, now)
    save_with_reason(case, user=user, reason="Claimed (next in queue)")
    return case


def skip(*, case: Case | int, user: User) -> Case | None:
    """Move on to the queue's next case without deciding this one: claim the next, then give this one back if the
    user held it. Returns the case now claimed, or None when no other case waits.

    Claiming first keeps claim-next from handing back the case being skipped (it is still held); when the skipped
    case was unclaimed and the most urgent, claim-next takes it, so one more claim-next moves on.
    """
    pk = case if isinstance(case, int) else case.pk
    current = Case.objects.select_related("queue").get(pk=pk)
    if current.queue is None:
        raise Conflict(f"Case {pk} is in no queue; there is no next case.")
    nxt = claim_next(user=user, queue=current.queue)
    if nxt is not None and nxt.pk == pk:
        nxt = claim_next(user=user, queue=current.queue)
    if Case.objects.filter(pk=pk, claimed_by=user).held(timezone.now()).exists():
        release(case=pk, user=user)
    return nxt
