"""Decisions: approve, correct, reject or escalate one case (confirm or flag an audit), and batch approval.

One decision writes a Decision row, the case's new state with a history record (user and reason), and an audit
event, in one transaction, under the case's row lock (`claims.lock_case`).
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cases.choices import AuditStatus, CaseStatus, QueueKind, Route
from cases.models import Case, Queue
from governance import events
from governance.choices import AuditKind
from governance.exceptions import Conflict
from governance.history import save_with_reason
from governance.models import Policy
from governance.queueing import enqueue_after_commit
from reviews.apps import DECISION_DIGEST_KEY, DECISION_ID_KEY
from reviews.choices import ACTIONS_NEEDING_REASON, AUDIT_ACTIONS, REVIEW_ACTIONS, Action, ReasonCode
from reviews.models import Decision
from reviews.services.claims import check_can_act, claimable_in, held_by_in, lock_case, may_work
from reviews.services.double_review import open_double_review
from reviews.services.labels import record_label, require_output

# Where a reject or an escalation goes, by reason code, from a quick or full queue (DESIGN.md, Lifecycle):
# the model did not understand -> a domain expert; the stakes are high or legal -> a supervisor.
ESCALATION_TARGETS: dict[str, str] = {
    ReasonCode.POLICY_LEGAL: QueueKind.ESCALATION,
    ReasonCode.HIGH_RISK: QueueKind.ESCALATION,
    ReasonCode.NEEDS_EXPERT: QueueKind.EXPERT,
}
# Queues where every approve, correct or reject is final, whatever its reason code.
FINAL_WORD_QUEUES = frozenset({QueueKind.ESCALATION, QueueKind.EXPERT})


@dataclass(frozen=True)
class Verdict:
    """What a decision does to a case: its new status and output, or the queue it moves to."""

    action: str
    output_after: dict[str, Any] | None
    final_status: str | None = None
    move_to: Queue | None = None


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
        return Verdict(Action.FLAG, require_output(output, "flag"))
    if action not in REVIEW_ACTIONS:
        raise ValidationError({"action": f"Choose one of {sorted(REVIEW_ACTIONS)}."})

    if action in (Action.APPROVE, Action.CORRECT) and case.route == Route.SHADOW:
        # Blind review: the reviewer gives their own output; agreeing with the model is an approve.
        own = require_output(output, action)
        agrees = own["label"] == case.output.get("label")
        final_status = CaseStatus.APPROVED if agrees else CaseStatus.CORRECTED
        return Verdict(Action.APPROVE if agrees else Action.CORRECT, own, final_status)
    if action == Action.APPROVE:
        return Verdict(Action.APPROVE, case.output, CaseStatus.APPROVED)
    if action == Action.CORRECT:
        return Verdict(Action.CORRECT, require_output(output, "correct"), CaseStatus.CORRECTED)

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
    case = lock_case(case)
    check_can_act(case, user, now)
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
    # The label the verdict makes (if any), in this transaction: a label exists exactly when its decision does.
    label = record_label(decision=decision, case=case, final_word=from_queue.kind in FINAL_WORD_QUEUES)
    # A share of the labelled verdicts gets a second, blind review; it never changes the case decided here.
    double_review = open_double_review(decision=decision, case=case, label=label, queue=from_queue)
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
            "double_review": double_review.pk if double_review else None,
        },
    )
    return decision


@dataclass
class BatchResult:
    batch_id: uuid.UUID
    approved: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    # The median of the seconds recorded per approved case; None when the batch's time was not known.
    median_seconds_per_case: float | None = None


def batch_cap(queue: Queue) -> int:
    """The most cases one batch approval may hold in this queue: its category's policy `batch_max`."""
    return int(Policy.objects.only("batch_max").get(category_id=queue.category_id).batch_max)


def check_may_batch(*, user: User, queue: Queue, size: int | None = None) -> None:
    """Refuse a batch where it cannot happen: a queue the user does not work, one that decides case by case, or
    (given its `size`) a selection larger than the policy's cap. The confirmation page and the approval ask alike."""
    if not may_work(user, queue):
        raise PermissionDenied(f"You may not work the queue {queue.slug!r}.")
    if not queue.allow_batch:
        raise Conflict(f"The queue {queue.slug!r} does not allow batch approval; decide its cases one by one.")
    if size is not None and size > (cap := batch_cap(queue)):
        raise ValidationError(
            {
                "cases": f"A batch holds at most {cap} cases (the policy's batch_max); {size} were selected. "
                "Approve them in smaller batches."
            }
        )


def split_seconds(total: int | None, count: int) -> list[int | None]:
    """A batch's seconds as each of its `count` cases' share: whole seconds that add up to the total (the first
    cases take the remainder), so the cases' figures sum to the time the person actually spent."""
    if total is None or count <= 0:
        return [None] * count
    share, remainder = divmod(total, count)
    return [share + 1 if index < remainder else share for index in range(count)]


def batch_approve(*, user: User, queue: Queue, case_ids: list[int], seconds_spent: int | None = None) -> BatchResult:
    """Approve several cases of a batch-enabled queue: one decision per case, one shared batch id.

    A selection larger than the policy's `batch_max` is refused whole, before anything is written. Each case is
    decided in its own transaction under its own lock; a case that is not in this queue, already decided, or
    held by someone else is skipped and reported, never overwritten; one the user may not see is "not found".
    The batch's time is shared by the cases approved, so a rubber-stamper's speed shows in every one of them,
    and the batch itself is one audit event with its cases and its median seconds per case. The admin and the
    API call this alike.
    """
    case_ids = list(dict.fromkeys(case_ids))  # in the order given, once each
    check_may_batch(user=user, queue=queue, size=len(case_ids))
    result = BatchResult(batch_id=uuid.uuid4())
    now = timezone.now()
    visible = set(Case.objects.visible_to(user).filter(pk__in=case_ids).values_list("pk", flat=True))
    in_queue = set(Case.objects.filter(pk__in=visible, queue=queue).values_list("pk", flat=True))
    # The batch's time is shared by the cases it can approve (waiting and not held by another), read up front.
    free = claimable_in(queue, now) | held_by_in(queue, user, now)
    approvable = set(free.filter(pk__in=in_queue).values_list("pk", flat=True))
    ordered = [case_id for case_id in case_ids if case_id in approvable]
    shares = dict(zip(ordered, split_seconds(seconds_spent, len(ordered)), strict=True))
    action = Action.CONFIRM if queue.kind == QueueKind.AUDIT else Action.APPROVE
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
                action=action,
                seconds_spent=shares.get(case_id),
                batch_id=result.batch_id,
            )
        except (Conflict, ValidationError) as exc:
            result.skipped.append((case_id, exc.messages[0] if isinstance(exc, ValidationError) else str(exc)))
        else:
            result.approved.append(case_id)
    if result.approved:
        _record_batch(result, user=user, queue=queue, action=action, seconds_spent=seconds_spent, shares=shares)
    return result


@transaction.atomic
def _record_batch(
    result: BatchResult,
    *,
    user: User,
    queue: Queue,
    action: str,
    seconds_spent: int | None,
    shares: dict[int, int | None],
) -> None:
    """The batch as one audit event: which cases it approved, in how long, and its median seconds per case (what
    an auditor asks of a batch; each case's own decision event carries its share and the batch id)."""
    timed = [seconds for case_id in result.approved if (seconds := shares.get(case_id)) is not None]
    result.median_seconds_per_case = float(statistics.median(timed)) if timed else None
    events.record(
        AuditKind.BATCH_APPROVED,
        actor=user,
        category_slug=queue.category.slug,
        payload={
            "batch_id": str(result.batch_id),
            "action": action,
            "queue": queue.slug,
            "cases": result.approved,
            "skipped": len(result.skipped),
            "seconds_spent": seconds_spent,
            "median_seconds_per_case": result.median_seconds_per_case,
        },
    )
