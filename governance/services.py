"""Every write to the governance layer: categories, policies, pauses and model versions.

Each service is atomic, stamps simple-history with the acting user and a reason, and appends an audit event.
The admin, the API and jobs call these; none of them writes these models another way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from governance import events
from governance.choices import MODEL_STATUS_ORDER, AuditKind, ModelStatus
from governance.exceptions import Conflict
from governance.history import save_with_reason
from governance.models import AuditEvent, Category, ModelVersion, Policy
from governance.notifications import notify, users_in_role
from governance.permissions import MODEL_STEWARD
from governance.signals import category_created

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
    "pause_rejection_rate",
    "pause_window_hours",
    "pause_min_reviews",
)


logger = logging.getLogger("hitl.audit")


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required: say why, for the audit trail."})
    return reason


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
    reason = _require_reason(reason)
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
    reason = _require_reason(reason)
    category = Category.objects.select_for_update().get(pk=category.pk)
    if category.paused:
        since = f" (since {category.paused_at:%Y-%m-%d %H:%M})" if category.paused_at else ""
        raise Conflict(f"Category {category.slug!r} is already paused{since}.")
    category.paused = True
    category.paused_at = timezone.now()
    category.paused_by = user  # type: ignore[assignment]
    category.paused_reason = reason
    save_with_reason(category, user=user, reason=f"Paused: {reason}")
    events.record(AuditKind.CATEGORY_PAUSED, actor=user, category_slug=category.slug, payload={"reason": reason})
    return category


@transaction.atomic
def resume_category(*, category: Category, user: User, reason: str) -> Category:
    """Turn automation back on. Only a person resumes; the pause window starts afresh from now."""
    reason = _require_reason(reason)
    category = Category.objects.select_for_update().get(pk=category.pk)
    if not category.paused:
        raise Conflict(f"Category {category.slug!r} is not paused.")
    category.paused = False
    category.resumed_at = timezone.now()
    save_with_reason(category, user=user, reason=f"Resumed: {reason}")
    events.record(AuditKind.CATEGORY_RESUMED, actor=user, category_slug=category.slug, payload={"reason": reason})
    return category


def parse_model_label(label: str) -> tuple[str, str]:
    """Split 'name@version' into its parts, or say exactly what is wrong with it."""
    name, sep, version = (label or "").partition("@")
    if not sep or not name.strip() or not version.strip() or "@" in version:
        raise ValidationError({"model_version": f"{label!r} is not of the form 'name@version'."})
    if len(name) > 100 or len(version) > 100:
        raise ValidationError({"model_version": "Name and version may each have at most 100 characters."})
    return name.strip(), version.strip()


@transaction.atomic
def register_model_version(
    *,
    category: Category,
    name: str,
    version: str,
    user: User | None,
    status: str = ModelStatus.REGISTERED,
    reason: str = "",
    notes: str = "",
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register a model version for the category; a duplicate name@version is a conflict."""
    for field_name, text in (("name", name), ("version", version)):
        if not text.strip() or "@" in text:
            raise ValidationError({field_name: "Must be non-empty and without '@' (a case names it as name@version)."})
    if ModelVersion.objects.filter(category=category, name=name, version=version).exists():
        raise Conflict(f"{name}@{version} is already registered for {category.slug!r}.")
    model_version = ModelVersion(
        category=category,
        name=name,
        version=version,
        status=ModelStatus.REGISTERED,
        notes=notes,
        metrics=metrics or {},
    )
    model_version.full_clean(exclude=["category"], validate_unique=False)
    try:
        with transaction.atomic():
            save_with_reason(model_version, user=user, reason=reason or "Registered")
    except IntegrityError as exc:
        raise Conflict(f"{name}@{version} is already registered for {category.slug!r}.") from exc
    events.record(
        AuditKind.MODEL_REGISTERED,
        actor=user,
        category_slug=category.slug,
        payload={"model_version": model_version.label, "reason": reason},
    )
    if status != ModelStatus.REGISTERED:
        model_version = promote_model_version(
            model_version=model_version, status=status, user=user, reason=reason or "Registered"
        )
    return model_version


def model_version_for_intake(*, category: Category, label: str, user: User | None = None) -> ModelVersion:
    """The version a case names; one never seen before is registered (status `registered`), in the history under
    the user whose submission first named it."""
    name, version = parse_model_label(label)
    existing = ModelVersion.objects.filter(category=category, name=name, version=version).order_by().first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return register_model_version(
                category=category, name=name, version=version, user=user, reason="First seen on a submitted case"
            )
    except Conflict:
        # Another request registered it a moment ago.
        return ModelVersion.objects.get(category=category, name=name, version=version)


def check_transition(current: str, target: str) -> None:
    if target not in ModelStatus.values:
        raise ValidationError({"status": f"{target!r} is not a model status; choose one of {ModelStatus.values}."})
    if current == target:
        raise ValidationError({"status": f"The version is already {current}."})
    if target == ModelStatus.RETIRED:
        return  # any status may be rolled back
    if current == ModelStatus.RETIRED and target == ModelStatus.ACTIVE:
        return  # undoing a rollback
    if MODEL_STATUS_ORDER.index(ModelStatus(target)) < MODEL_STATUS_ORDER.index(ModelStatus(current)):
        raise ValidationError(
            {"status": f"Cannot go back from {current} to {target}; retire the version instead (a rollback)."}
        )


@transaction.atomic
def promote_model_version(*, model_version: ModelVersion, status: str, user: User | None, reason: str) -> ModelVersion:
    """Move a version along its rollout. Promoting one to `active` retires the category's previous active one."""
    reason = _require_reason(reason)
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    previous = model_version.status
    check_transition(previous, status)
    if status == ModelStatus.ACTIVE:
        for other in (
            ModelVersion.objects.select_for_update()
            .filter(category=model_version.category, status=ModelStatus.ACTIVE)
            .exclude(pk=model_version.pk)
        ):
            other.status = ModelStatus.RETIRED
            save_with_reason(other, user=user, reason=f"Replaced by {model_version.label}: {reason}")
            events.record(
                AuditKind.MODEL_STATUS_CHANGED,
                actor=user,
                category_slug=model_version.category.slug,
                payload={
                    "model_version": other.label,
                    "from": ModelStatus.ACTIVE,
                    "to": ModelStatus.RETIRED,
                    "reason": f"Replaced by {model_version.label}",
                },
            )
    model_version.status = status
    if status in (ModelStatus.CANARY, ModelStatus.ACTIVE):
        model_version.approved_by = user  # type: ignore[assignment]
        model_version.approved_at = timezone.now()
    save_with_reason(model_version, user=user, reason=reason)
    events.record(
        AuditKind.MODEL_STATUS_CHANGED,
        actor=user,
        category_slug=model_version.category.slug,
        payload={"model_version": model_version.label, "from": previous, "to": status, "reason": reason},
    )
    return model_version


def anchor_audit_chains(*, user: User | None = None) -> dict[str, Any]:
    """Copy each audit chain's head outside the database (hourly; DESIGN.md, Audit and privacy).

    For every chain that moved since its last anchor: a line in the anchor log (`settings.AUDIT_ANCHOR_FILE`,
    which `verify_audit` reads back), a line in the application log, a notice to the model stewards, and an
    `audit.anchor` event in the chain itself, which reaches the category's webhooks. A chain whose head is its
    own last anchor has not moved: running the job again anchors nothing twice.
    """
    anchored: list[dict[str, Any]] = []
    for head in events.current_heads():
        last = AuditEvent.objects.filter(category_slug=head.chain, seq=head.seq).only("kind").first()
        if last is not None and last.kind == AuditKind.AUDIT_ANCHOR:
            continue
        anchor = {"chain": head.chain, "seq": head.seq, "hash": head.hash, "at": timezone.now().isoformat()}
        events.write_anchor_line(anchor)
        logger.info("audit.anchor chain=%r seq=%d hash=%s", head.chain, head.seq, head.hash)
        with transaction.atomic():
            events.record(
                AuditKind.AUDIT_ANCHOR,
                actor=user,
                category_slug=head.chain,
                payload={"anchored_seq": head.seq, "anchored_hash": head.hash},
            )
        anchored.append(anchor)
    if anchored:
        lines = "\n".join(f"{a['chain'] or '(global)'}: seq {a['seq']} hash {a['hash']}" for a in anchored)
        notify(
            users_in_role(MODEL_STEWARD),
            subject=f"Audit anchor: {len(anchored)} chain head(s)",
            body=f"Keep this outside the database; `manage.py verify_audit` checks against it.\n{lines}",
            kind="audit.anchor",
        )
    return {"anchored": len(anchored), "chains": [a["chain"] for a in anchored]}
