"""Double review: a share of human-decided cases gets a second, blind review by another person with the same
grants, and a disagreement goes to adjudication in the category's expert queue (DESIGN.md, Feedback loop).

What it never does is change what already acted: the case was final when its first verdict was given and stays
exactly as it is (status, final output, history). A double review only works on labels:

- the first verdict's label stays the case's label while the second review waits, and when the pair agrees;
- the second reviewer's label is kept beside it (source `double_review`) for agreement, never as the case's word
  (it is stored superseded: one current label per case, and training counts an agreed case once);
- a disagreement is an unresolved disagreement on the first label: it leaves the quality gate until an
  adjudicator's label (source `adjudication`) supersedes both, passing the gate when the adjudicator is certified.

Who may take a task is one queryset rule (`DoubleReviewQuerySet.for_worker`); claims lock the task row, so two
people never hold the same task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from cases.choices import QueueKind, Route
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from cases.routing import double_review_draw
from governance import events
from governance.choices import AuditKind
from governance.exceptions import Conflict
from governance.models import Policy
from reviews.choices import DoubleReviewStatus, LabelSource
from reviews.models import Decision, DoubleReview, Label
from reviews.services.claims import claim_duration
from reviews.services.labels import is_certified, require_output

# The first verdicts a second review checks: a person's own label of a model output in an everyday queue. Shadow
# cases are blind reviews already, audits check the model, and an escalation's final word is an expert's.
DOUBLE_REVIEWED_SOURCES = frozenset({LabelSource.APPROVE, LabelSource.CORRECT})
DOUBLE_REVIEWED_QUEUES = frozenset({QueueKind.QUICK, QueueKind.FULL})


def open_double_review(*, decision: Decision, case: Case, label: Label | None, queue: Queue) -> DoubleReview | None:
    """Draw the case for a second review (inside the decision's transaction) and open the task when it is drawn.

    The draw is the case's hash under the category's policy as it stands at the decision (its version and
    `double_review_rate`), so the same case decided under the same policy always gets the same answer."""
    eligible = (
        label is not None
        and label.source in DOUBLE_REVIEWED_SOURCES
        and decision.actor_id is not None
        and queue.kind in DOUBLE_REVIEWED_QUEUES
        and case.route != Route.SHADOW
    )
    if not eligible:
        return None
    assert label is not None and decision.actor is not None
    policy = Policy.objects.only("version", "double_review_rate").get(category_id=case.category_id)
    value = double_review_draw(case.category.slug, case.external_id, policy.version)
    if value >= policy.double_review_rate:
        return None
    return DoubleReview.objects.create(
        case=case,
        category_id=case.category_id,
        first_decision=decision,
        first_label=label,
        first_reviewer=decision.actor,
        queue=queue,
        policy_version=policy.version,
        draw=round(value, 6),
    )


def lock_task(task: DoubleReview | int) -> DoubleReview:
    """Lock the task row, then read it with its relations (as `claims.lock_case` does, for the same reason)."""
    pk = task if isinstance(task, int) else task.pk
    if not DoubleReview.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True):
        raise DoubleReview.DoesNotExist(f"No double review {pk}.")
    return DoubleReview.objects.select_related(
        "case", "category", "first_label", "second_label", "queue", "adjudication_queue", "claimed_by"
    ).get(pk=pk)


def queue_ids_of(user: User) -> set[int] | None:
    """The queues the user works, for `for_worker`: None (every queue) for a superuser."""
    return None if user.is_superuser else worked_queue_ids(user)


def may_take(task: DoubleReview, user: User) -> bool:
    """May the user work this task now (its phase, their grants, not one of its earlier reviewers)?"""
    return DoubleReview.objects.filter(pk=task.pk).for_worker(user, queue_ids_of(user)).exists()


def check_can_work(task: DoubleReview, user: User, now: datetime) -> None:
    """Refuse, in words, what `for_worker` does not allow, or a task someone else holds."""
    if task.status not in (DoubleReviewStatus.SECOND_REVIEW, DoubleReviewStatus.ADJUDICATION):
        raise Conflict(f"Double review #{task.pk} is already done ({task.get_status_display().lower()}).")
    if not may_take(task, user):
        if task.first_reviewer_id == user.pk:
            raise PermissionDenied("You gave this case's first verdict: its second review must be someone else's.")
        if task.second_reviewer_id == user.pk:
            raise PermissionDenied("You gave this case's second verdict: a third person adjudicates.")
        queue = task.queue if task.status == DoubleReviewStatus.SECOND_REVIEW else task.adjudication_queue
        raise PermissionDenied(f"You may not work the queue {queue.slug if queue else '(none)'!r}.")
    holder = task.holder_id_at(now)
    if holder is not None and holder != user.pk:
        who = task.claimed_by.get_username() if task.claimed_by else "someone else"
        raise Conflict(f"Double review #{task.pk} is claimed by {who}; nothing changed.")


@transaction.atomic
def claim_double_review(*, task: DoubleReview | int, user: User) -> DoubleReview:
    """Hold the task for the claim duration. Under the task's row lock: of two people claiming at once, the second
    waits for the first and is then refused."""
    now = timezone.now()
    task = lock_task(task)
    check_can_work(task, user, now)
    task.claimed_by, task.claimed_until = user, now + claim_duration()
    task.save(update_fields=["claimed_by", "claimed_until"])
    return task


@transaction.atomic
def release_double_review(*, task: DoubleReview | int, user: User) -> DoubleReview:
    """Give the task back; only its holder may."""
    task = lock_task(task)
    if task.holder_id_at(timezone.now()) != user.pk:
        raise Conflict(f"Double review #{task.pk} is not claimed by you; nothing to release.")
    task.claimed_by, task.claimed_until = None, None
    task.save(update_fields=["claimed_by", "claimed_until"])
    return task


def _label(task: DoubleReview, *, user: User, source: str, output: dict[str, Any], now: datetime) -> Label:
    first = task.first_label
    certified = is_certified(user, task.category)
    agrees_or_decides = source == LabelSource.ADJUDICATION or str(output["label"]) == first.label
    return Label.objects.create(
        case=task.case,
        category=task.category,
        decision=None,
        source=source,
        label=str(output["label"])[:200],
        output=dict(output),
        model_label=first.model_label,
        reviewer=user,
        model_version=first.model_version,
        policy_version=first.policy_version,
        certified=certified,
        passed_gate=certified and agrees_or_decides,
        superseded=source == LabelSource.DOUBLE_REVIEW,
        created_at=now,
    )


def _adjudication_queue(task: DoubleReview) -> Queue:
    """The category's expert queue; a category without one adjudicates in the first verdict's queue."""
    return Queue.objects.filter(category_id=task.category_id, kind=QueueKind.EXPERT).first() or task.queue


@transaction.atomic
def submit_second_review(*, task: DoubleReview | int, user: User, output: Any) -> DoubleReview:
    """The second reviewer's own output, given blind. Agreement (the same label) closes the task; a disagreement
    takes the first label out of the quality gate and opens an adjudication in the expert queue."""
    now = timezone.now()
    task = lock_task(task)
    check_can_work(task, user, now)
    if task.status != DoubleReviewStatus.SECOND_REVIEW:
        raise Conflict(f"Double review #{task.pk} waits for adjudication, not for a second review.")
    output = require_output(output, "give a second review")
    second = _label(task, user=user, source=LabelSource.DOUBLE_REVIEW, output=output, now=now)
    task.second_reviewer, task.second_label, task.second_at = user, second, now
    task.agreed = second.label == task.first_label.label
    task.claimed_by, task.claimed_until = None, None
    if task.agreed:
        task.status = DoubleReviewStatus.AGREED
    else:
        task.status = DoubleReviewStatus.ADJUDICATION
        task.adjudication_queue = _adjudication_queue(task)
        Label.objects.filter(pk=task.first_label_id).update(passed_gate=False)
    task.save()
    events.record(
        AuditKind.CASE_DOUBLE_REVIEWED,
        actor=user,
        category_slug=task.category.slug,
        case_id=task.case_id,
        payload={
            "double_review": task.pk,
            "first_label": task.first_label.label,
            "second_label": second.label,
            "agreed": task.agreed,
            "adjudication_queue": task.adjudication_queue.slug if task.adjudication_queue else None,
        },
    )
    return task


@transaction.atomic
def adjudicate(*, task: DoubleReview | int, user: User, output: Any) -> DoubleReview:
    """A third person's final word on a disagreement: their label supersedes both of the pair's (and passes the
    gate when they are certified). The case, final since its first verdict, stays as it is."""
    now = timezone.now()
    task = lock_task(task)
    check_can_work(task, user, now)
    if task.status != DoubleReviewStatus.ADJUDICATION:
        raise Conflict(f"Double review #{task.pk} has no disagreement to adjudicate.")
    output = require_output(output, "adjudicate")
    label = _label(task, user=user, source=LabelSource.ADJUDICATION, output=output, now=now)
    Label.objects.filter(case_id=task.case_id, superseded=False).exclude(pk=label.pk).update(superseded=True)
    task.adjudicator, task.adjudicated_label, task.adjudicated_at = user, label, now
    task.status = DoubleReviewStatus.ADJUDICATED
    task.claimed_by, task.claimed_until = None, None
    task.save()
    assert task.second_label is not None
    events.record(
        AuditKind.CASE_ADJUDICATED,
        actor=user,
        category_slug=task.category.slug,
        case_id=task.case_id,
        payload={
            "double_review": task.pk,
            "first_label": task.first_label.label,
            "second_label": task.second_label.label,
            "adjudicated_label": label.label,
        },
    )
    return task
