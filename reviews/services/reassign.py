"""Reassignment: an escalation manager moves a waiting case to another queue and/or hands it to a person."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cases.choices import QueueKind
from cases.models import Case, Queue
from governance import events
from governance.choices import AuditKind
from governance.exceptions import Conflict
from governance.history import require_reason, save_with_reason
from reviews.services.claims import is_waiting, lock_case, may_work, set_claim

REASSIGN_PERM = "cases.change_case"


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
    reason = require_reason(reason)
    queue, assignee = queue or None, assignee or None
    if queue is None and assignee is None:
        raise ValidationError({"queue": "Name a queue to move the case to, an assignee, or both."})
    now = timezone.now()
    case = lock_case(case)
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
        case.status = queue.waiting_status
    target_queue = case.queue
    if assignee is not None:
        if not may_work(assignee, target_queue):
            raise ValidationError({"assignee": f"{assignee.get_username()} may not work the queue {target_queue}."})
        set_claim(case, assignee, now)
    else:
        set_claim(case, None, now)
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
