"""People at work: claims, decisions, escalations, reassignments, batch approval and audits of auto cases.

Every function locks the case row first, re-checks the state under the lock, and refuses with `Conflict` (409)
what another person changed in the meantime: a case already final, or held by someone else. One decision writes
a Decision row, the case's new state with a history record (user and reason), and an audit event, in one
transaction. The admin and the API call these; neither writes a case another way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cases.choices import OPEN_STATUSES, AuditStatus, CaseStatus, QueueKind, Route
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from cases.services.sla import waiting_status_for
from governance import events
from governance.choices import AuditKind
from governance.exceptions import Conflict
from governance.history import save_with_reason
from governance.queueing import enqueue_after_commit
from reviews.apps import DECISION_DIGEST_KEY, DECISION_ID_KEY
from reviews.choices import ACTIONS_NEEDING_REASON, AUDIT_ACTIONS, REVIEW_ACTIONS, Action, ReasonCode
from reviews.models import Decision

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

REASSIGN_PERM = "cases.change_case"

# Where a reject or an escalation goes, by reason code, from a quick or full queue (DESIGN.md, Lifecycle):
# the model did not understand -> a domain expert; the stakes are high or legal -> a supervisor.
ESCALATION_TARGETS: dict[str, str] = {
    ReasonCode.POLICY_LEGAL: QueueKind.ESCALATION,
    ReasonCode.HIGH_RISK: QueueKind.ESCALATION,
    ReasonCode.NEEDS_EXPERT: QueueKind.EXPERT,
}
# Queues where every approve, correct or reject is final, whatever its reason code.
FINAL_WORD_QUEUES = frozenset({QueueKind.ESCALATION, QueueKind.EXPERT})


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


def _lock(case: Case | int) -> Case:
    """Lock the case row, then read it with its relations: a read that sees what it locked.

    Locking and joining in one statement is wrong on PostgreSQL: after waiting for another transaction's lock,
    the re-check sees the case's new columns (a new `claimed_by_id`) but the joined rows of the old snapshot
    (no such user). Taking the lock alone and reading afterwards sees one committed state.
    """
    pk = case if isinstance(case, int) else case.pk
    if not Case.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True):
        raise Case.DoesNotExist(f"No case {pk}.")
    return Case.objects.select_related("category", "queue", "model_version", "claimed_by").get(pk=pk)


def _check_can_act(case: Case, user: User, now: datetime) -> None:
    if not is_waiting(case):
        raise Conflict(f"Case {case.pk} is already decided ({case.get_status_display().lower()}); nothing changed.")
    if not may_work(user, case.queue):
        raise PermissionDenied(f"You may not work the queue {case.queue.slug if case.queue else '(none)'!r}.")
    if case.is_held_by_other(user, now):
        holder = case.claimed_by.get_username() if case.claimed_by is not None else "someone else"
        until = f" until {timezone.localtime(case.claimed_until):%H:%M}" if case.claimed_until else ""
        raise Conflict(f"Case {case.pk} is claimed by {holder}{until}; nothing changed.")


def _set_claim(case: Case, user: User | None, now: datetime) -> None:
    case.claimed_by = user
    case.claimed_until = now + claim_duration() if user is not None else None
    if case.status in OPEN_STATUSES:  # an auto case waiting for audit keeps its final status
        case.status = CaseStatus.CLAIMED if user is not None else waiting_status_for(case.queue)  # type: ignore[arg-type]


@transaction.atomic
def claim(*, case: Case | int, user: User) -> Case:
    """Hold the case for `user` for the claim duration (default 15 minutes); renewing one's own claim is fine."""
    now = timezone.now()
    case = _lock(case)
    _check_can_act(case, user, now)
    _set_claim(case, user, now)
    save_with_reason(case, user=user, reason="Claimed")
    return case


@transaction.atomic
def release(*, case: Case | int, user: User) -> Case:
    """Give the case back to its queue. Only its holder may release it (an escalation manager reassigns)."""
    now = timezone.now()
    case = _lock(case)
    if not may_work(user, case.queue):
        raise PermissionDenied("You may not work this case's queue.")
    if case.holder_id_at(now) != user.pk:
        raise Conflict(f"Case {case.pk} is not claimed by you; nothing to release.")
    _set_claim(case, None, now)
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
    case = _lock(case)
    _set_claim(case, user, now)
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


@dataclass(frozen=True)
class Verdict:
    """What a decision does to a case: its new status and output, or the queue it moves to."""

    action: str
    output_after: dict[str, Any] | None
    final_status: str | None = None
    move_to: Queue | None = None


def _require_output(output: Any, action: str) -> dict[str, Any]:
    if not isinstance(output, dict) or not isinstance(output.get("label"), str) or not output["label"].strip():
        raise ValidationError({"output": f"To {action}, send the output as an object with a non-empty `label`."})
    return output


def _queue_of_kind(case: Case, kind: str) -> Queue:
    queue = Queue.objects.filter(category=case.category, kind=kind).first()
    if queue is None:
        raise ValidationError({"reason_code": f"The category has no {kind} queue to send this case to."})
    return queue


def _verdict(case: Case, action: str, output: Any, reason_code: str) -> Verdict:
    """Apply DESIGN.md's lifecycle rules to one requested action, or say what is wrong with it."""
    assert case.queue is not None
    if action in ACTIONS_NEEDING_REASON and not reason_code:
        raise ValidationError({"reason_code": f"A reason code is required to {action}: one of {ReasonCode.values}."})
    if case.audit_status == AuditStatus.PENDING:
        if action not in AUDIT_ACTIONS:
            raise ValidationError({"action": "This is an audit of an auto-approved case: confirm it or flag it."})
        if action == Action.CONFIRM:
            return Verdict(Action.CONFIRM, None)
        return Verdict(Action.FLAG, _require_output(output, "flag"))
    if action not in REVIEW_ACTIONS:
        raise ValidationError({"action": f"Choose one of {sorted(REVIEW_ACTIONS)}."})

    if action in (Action.APPROVE, Action.CORRECT) and case.route == Route.SHADOW:
        # Blind review: the reviewer gives their own output; agreeing with the model is an approve.
        own = _require_output(output, action)
        agrees = own["label"] == case.output.get("label")
        final_status = CaseStatus.APPROVED if agrees else CaseStatus.CORRECTED
        return Verdict(Action.APPROVE if agrees else Action.CORRECT, own, final_status)
    if action == Action.APPROVE:
        return Verdict(Action.APPROVE, case.output, CaseStatus.APPROVED)
    if action == Action.CORRECT:
        return Verdict(Action.CORRECT, _require_output(output, "correct"), CaseStatus.CORRECTED)

    in_final_word_queue = case.queue.kind in FINAL_WORD_QUEUES
    target_kind = ESCALATION_TARGETS.get(reason_code)
    if action == Action.REJECT and (in_final_word_queue or target_kind is None):
        return Verdict(Action.REJECT, None, CaseStatus.REJECTED)
    # An escalation, or a reject whose reason sends it up: to the escalation or the expert queue.
    target_kind = target_kind or QueueKind.ESCALATION
    if target_kind == case.queue.kind:
        other = (
            "needs_expert (the expert queue)" if target_kind == QueueKind.ESCALATION else "policy_legal or high_risk"
        )
        raise ValidationError(
            {"reason_code": f"The case is already in the {target_kind} queue; to escalate it, choose {other}."}
        )
    return Verdict(action, None, move_to=_queue_of_kind(case, target_kind))


@transaction.atomic
def decide(
    *,
    case: Case | int,
    user: User,
    action: str,
    output: Any = None,
    reason_code: str = "",
    notes: str = "",
    seconds_spent: int | None = None,
    batch_id: uuid.UUID | None = None,
) -> Decision:
    """Record one human decision: approve, correct, reject or escalate (confirm or flag for an audit)."""
    now = timezone.now()
    case = _lock(case)
    _check_can_act(case, user, now)
    if reason_code and reason_code not in ReasonCode.values:
        raise ValidationError(
            {"reason_code": f"{reason_code!r} is not a reason code; choose one of {ReasonCode.values}."}
        )
    verdict = _verdict(case, action, output, reason_code)
    from_queue = case.queue
    assert from_queue is not None
    decision = Decision.objects.create(
        case=case,
        actor=user,
        action=verdict.action,
        output_before=case.output,
        output_after=verdict.output_after,
        reason_code=reason_code,
        notes=notes,
        seconds_spent=seconds_spent,
        batch_id=batch_id,
        model_version=case.model_version.label,
        policy_version=case.policy_version,
    )
    case.claimed_by, case.claimed_until = None, None
    if verdict.action in AUDIT_ACTIONS:
        case.audit_status = AuditStatus.CONFIRMED if verdict.action == Action.CONFIRM else AuditStatus.FLAGGED
        kind = AuditKind.CASE_AUDITED
    elif verdict.move_to is not None:
        case.queue = verdict.move_to
        case.status = CaseStatus.ESCALATED
        case.due_at = now + verdict.move_to.sla
        kind = AuditKind.CASE_ESCALATED
    else:
        assert verdict.final_status is not None
        case.status = verdict.final_status
        case.final_output = verdict.output_after
        case.decided_at = now
        kind = AuditKind.CASE_DECIDED
    reason = f"{verdict.action}" + (f" ({reason_code})" if reason_code else "")
    save_with_reason(case, user=user, reason=reason)
    # A refused output may tip the category over its pause rule: check it once this decision is committed.
    enqueue_after_commit("metrics.jobs.pause_check", case.category_id)
    events.record(
        kind,
        actor=user,
        category_slug=case.category.slug,
        case_id=case.pk,
        payload={
            DECISION_ID_KEY: decision.pk,
            DECISION_DIGEST_KEY: events.content_digest(decision.bound_content()),
            "action": verdict.action,
            "reason_code": reason_code,
            "from_queue": from_queue.slug,
            "to_queue": verdict.move_to.slug if verdict.move_to else None,
            "status": case.status,
            "audit_status": case.audit_status,
            "batch_id": str(batch_id) if batch_id else None,
            "seconds_spent": seconds_spent,
        },
    )
    return decision


@dataclass
class BatchResult:
    batch_id: uuid.UUID
    approved: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def check_may_batch(*, user: User, queue: Queue) -> None:
    """Refuse a batch where it cannot happen: a queue the user does not work, or one that decides case by case."""
    if not may_work(user, queue):
        raise PermissionDenied(f"You may not work the queue {queue.slug!r}.")
    if not queue.allow_batch:
        raise Conflict(f"The queue {queue.slug!r} does not allow batch approval; decide its cases one by one.")


def batch_approve(*, user: User, queue: Queue, case_ids: list[int], seconds_spent: int | None = None) -> BatchResult:
    """Approve several cases of a batch-enabled queue: one decision per case, one shared batch id.

    Each case is decided in its own transaction under its own lock; a case that is not in this queue, already
    decided, or held by someone else is skipped and reported, never overwritten; one the user may not see is
    "not found". The admin and the API call this alike.
    """
    check_may_batch(user=user, queue=queue)
    result = BatchResult(batch_id=uuid.uuid4())
    now = timezone.now()
    case_ids = list(dict.fromkeys(case_ids))  # in the order given, once each
    visible = set(Case.objects.visible_to(user).filter(pk__in=case_ids).values_list("pk", flat=True))
    in_queue = set(Case.objects.filter(pk__in=visible, queue=queue).values_list("pk", flat=True))
    # The batch's time is shared by the cases it can approve (waiting and not held by another), read up front.
    free = claimable_in(queue, now) | Case.objects.waiting_in(queue).filter(claimed_by=user)
    approvable = free.filter(pk__in=in_queue).count()
    per_case = seconds_spent // approvable if seconds_spent and approvable else None
    for case_id in case_ids:
        if case_id not in visible:
            # A case the user may not see is reported like a missing one, without saying it exists.
            result.skipped.append((case_id, "not found"))
            continue
        if case_id not in in_queue:
            result.skipped.append((case_id, "not in this queue"))
            continue
        try:
            decide(
                case=case_id,
                user=user,
                action=Action.CONFIRM if queue.kind == QueueKind.AUDIT else Action.APPROVE,
                seconds_spent=per_case,
                batch_id=result.batch_id,
            )
        except (Conflict, ValidationError) as exc:
            result.skipped.append((case_id, exc.messages[0] if isinstance(exc, ValidationError) else str(exc)))
        else:
            result.approved.append(case_id)
    return result


def _queue_of_category(case: Case, slug: str) -> Queue:
    queue = Queue.objects.filter(slug=slug, category_id=case.category_id).first()
    if queue is None:
        raise ValidationError({"queue": f"No queue {slug!r} in this case's category."})
    return queue


def _active_user(username: str) -> User:
    found = User.objects.filter(username=username, is_active=True).first()
    if found is None:
        raise ValidationError({"assignee": f"No active user {username!r}."})
    return found


@transaction.atomic
def reassign(
    *,
    case: Case | int,
    user: User,
    reason: str,
    queue: Queue | str | None = None,
    assignee: User | str | None = None,
) -> Case:
    """An escalation manager moves a waiting case to another queue of its category, and/or hands it to a person
    (a claim in their name). Needs `cases.change_case` and the right to work the case's queue.

    `queue` may be given by slug (a queue of the case's category) and `assignee` by username (an active user), as
    the admin's form and the API send them; an empty string means "not given"."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required to reassign a case."})
    queue, assignee = queue or None, assignee or None
    if queue is None and assignee is None:
        raise ValidationError({"queue": "Name a queue to move the case to, an assignee, or both."})
    now = timezone.now()
    case = _lock(case)
    if not (user.has_perm(REASSIGN_PERM) and may_work(user, case.queue)):
        raise PermissionDenied("Reassigning needs cases.change_case and the right to work the case's queue.")
    if not is_waiting(case):
        raise Conflict(f"Case {case.pk} is already decided; nothing to reassign.")
    if isinstance(queue, str):
        queue = _queue_of_category(case, queue)
    if isinstance(assignee, str):
        assignee = _active_user(assignee)
    from_queue = case.queue
    assert from_queue is not None
    if queue is not None and queue.pk != from_queue.pk:
        if queue.category_id != case.category_id:
            raise ValidationError({"queue": "A case can only move to a queue of its own category."})
        if queue.kind == QueueKind.AUDIT or from_queue.kind == QueueKind.AUDIT:
            raise ValidationError({"queue": "Audit work stays in the audit queue."})
        case.queue = queue
        case.due_at = now + queue.sla
        case.status = waiting_status_for(queue)
    target_queue = case.queue
    if assignee is not None:
        if not may_work(assignee, target_queue):
            raise ValidationError({"assignee": f"{assignee.get_username()} may not work the queue {target_queue}."})
        _set_claim(case, assignee, now)
    else:
        _set_claim(case, None, now)
    save_with_reason(case, user=user, reason=f"Reassigned: {reason}")
    events.record(
        AuditKind.CASE_REASSIGNED,
        actor=user,
        category_slug=case.category.slug,
        case_id=case.pk,
        payload={
            "from_queue": from_queue.slug,
            "to_queue": target_queue.slug if target_queue else None,
            "assignee": assignee.get_username() if assignee else None,
            "reason": reason,
        },
    )
    return case
