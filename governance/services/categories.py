"""Categories, their policies, and pausing and resuming their automation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from governance import events
from governance.choices import AuditKind, IncidentStage
from governance.exceptions import Conflict
from governance.history import require_reason, save_with_reason
from governance.models import Category, Policy
from governance.services.incidents import STAGE_ORDER, advance_incident
from governance.signals import category_created, category_paused, category_resumed

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# The policy fields a product owner may set (everything but the category and the version counter).
POLICY_FIELDS = (
    "auto_threshold",
    "review_threshold",
    "auto_share",
    "high_value_amount",
    "sensitive_labels",
    "sensitive_rules",
    "audit_rate",
    "audit_multipliers",
    "double_review_rate",
    "pause_rejection_rate",
    "pause_window_hours",
    "pause_min_reviews",
    "batch_max",
)


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in ("version", *POLICY_FIELDS)}


@transaction.atomic
def create_category(
    *,
    user: User | None,
    slug: str,
    name: str,
    pattern: str,
    stage: str,
    consequence: str = "medium",
    description: str = "",
    pii_fields: list[str] | None = None,
    retention_days: int = 365,
    retrain_every_days: int = 30,
    baseline_minutes_per_case: Any = None,
    policy: dict[str, Any] | None = None,
    create_default_queues: bool = True,
    reason: str = "Category created",
) -> Category:
    """Create a category with its first policy (version 1) and, unless told otherwise, its five default queues.

    The creator (if not a superuser) is granted view and change on the new category, so they can see and edit
    what they made.
    """
    category = Category(
        slug=slug,
        name=name,
        pattern=pattern,
        stage=stage,
        consequence=consequence,
        description=description,
        pii_fields=pii_fields or [],
        retention_days=retention_days,
        retrain_every_days=retrain_every_days,
    )
    if baseline_minutes_per_case is not None:
        category.baseline_minutes_per_case = baseline_minutes_per_case
    category.full_clean()
    save_with_reason(category, user=user, reason=reason)

    unknown = set(policy or {}) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(
            {"policy": f"Not policy fields: {sorted(unknown)}; known fields are {list(POLICY_FIELDS)}."}
        )
    policy_obj = Policy(category=category, version=1, **(policy or {}))
    policy_obj.full_clean(exclude=["category"])
    save_with_reason(policy_obj, user=user, reason=reason)

    if user is not None and not getattr(user, "is_superuser", False):
        assign_perm("governance.view_category", user, category)
        assign_perm("governance.change_category", user, category)

    category_created.send(sender=Category, category=category, user=user, create_default_queues=create_default_queues)
    events.record(
        AuditKind.CATEGORY_CREATED,
        actor=user,
        category_slug=category.slug,
        payload={"name": name, "pattern": pattern, "stage": stage, "policy": policy_snapshot(policy_obj)},
    )
    return category


@transaction.atomic
def update_policy(*, category: Category, user: User | None, changes: dict[str, Any], reason: str) -> Policy:
    """Apply `changes` as a new policy version. Cases already routed keep the version they were routed under."""
    reason = require_reason(reason)
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a policy field." for name in sorted(unknown)})
    policy = Policy.objects.select_for_update().get(category=category)
    before = policy_snapshot(policy)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean(exclude=["category"])
    changed = {name: [before[name], getattr(policy, name)] for name in changes if before[name] != getattr(policy, name)}
    if not changed:
        raise ValidationError({"non_field_errors": "Nothing changed: the policy already has these values."})
    policy.version += 1
    save_with_reason(policy, user=user, reason=reason)
    events.record(
        AuditKind.POLICY_CHANGED,
        actor=user,
        category_slug=category.slug,
        payload={"version": policy.version, "changes": changed, "reason": reason},
    )
    return policy


@transaction.atomic
def pause_category(*, category: Category, user: User | None, reason: str) -> Category:
    """Turn automation off for the category: from now on every case goes to a human first."""
    reason = require_reason(reason)
    # FOR NO KEY UPDATE: the pause then waits for the category's audit chain head, which an intake or a decision
    # may hold while its commit checks a foreign key to this row (a key-share lock). FOR UPDATE would block that
    # check, and each would wait on the other: a deadlock. Nothing here changes the row's keys.
    category = Category.objects.select_for_update(no_key=True).get(pk=category.pk)
    if category.paused:
        since = f" (since {category.paused_at:%Y-%m-%d %H:%M})" if category.paused_at else ""
        raise Conflict(f"Category {category.slug!r} is already paused{since}.")
    category.paused = True
    category.paused_at = timezone.now()
    category.paused_by = user
    category.paused_reason = reason
    category.pause_incident = None  # a pause by hand opens none; the pause rule's links its own (open_incident)
    save_with_reason(category, user=user, reason=f"Paused: {reason}")
    events.record(AuditKind.CATEGORY_PAUSED, actor=user, category_slug=category.slug, payload={"reason": reason})
    category_paused.send(sender=Category, category=category, user=user, reason=reason)
    return category


@transaction.atomic
def resume_category(*, category: Category, user: User, reason: str) -> Category:
    """Turn automation back on. Only a person resumes; the pause window starts afresh from now.

    The resume is written on the incident the pause opened (if any, and not closed), which moves on from contain
    to investigate: containment is lifted, and what is left is finding out why and remediating. An incident that
    is already further along keeps its stage and gets the resume as a note.
    """
    reason = require_reason(reason)
    locked = Category.objects.select_for_update(of=("self",), no_key=True)
    category = locked.select_related("pause_incident").get(pk=category.pk)
    if not category.paused:
        raise Conflict(f"Category {category.slug!r} is not paused.")
    incident = category.pause_incident
    category.paused = False
    category.resumed_at = timezone.now()
    category.pause_incident = None
    save_with_reason(category, user=user, reason=f"Resumed: {reason}")
    payload: dict[str, Any] = {"reason": reason}
    if incident is not None and incident.stage != IncidentStage.CLOSED:
        stage = max(incident.stage, IncidentStage.INVESTIGATE, key=STAGE_ORDER.index)
        advance_incident(
            incident=incident, user=user, stage=stage, note=f"Automation resumed by {user.get_username()}: {reason}"
        )
        payload["incident_id"] = incident.pk
    events.record(AuditKind.CATEGORY_RESUMED, actor=user, category_slug=category.slug, payload=payload)
    category_resumed.send(sender=Category, category=category, user=user, reason=reason)
    return category


@transaction.atomic
def set_retrain_cadence(*, category: Category, user: User | None, retrain_every_days: int, reason: str) -> Category:
    """How often the built-in model of the category is retrained (0: never on a cadence), with a reason in the
    category's history. Not a policy change: routing does not depend on it."""
    reason = require_reason(reason)
    category = Category.objects.select_for_update(no_key=True).get(pk=category.pk)
    before = category.retrain_every_days
    category.retrain_every_days = retrain_every_days
    category.full_clean(validate_unique=False, validate_constraints=False)
    if before == retrain_every_days:
        raise ValidationError({"retrain_every_days": f"It is already {before}."})
    save_with_reason(category, user=user, reason=f"Retraining cadence {before} -> {retrain_every_days} days: {reason}")
    return category
