"""Model versions: registered (by hand, or when a case first names one) and promoted along their rollout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import events
from governance.artifacts import artifact_digest
from governance.choices import MODEL_STATUS_ORDER, AuditKind, ModelStatus
from governance.exceptions import Conflict
from governance.history import require_reason, save_with_reason
from governance.models import Category, ModelArtifact, ModelVersion
from governance.promotion_gate import BUILTIN_MODEL_NAME, promotion_shortfalls

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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
    artifact: bytes | None = None,
) -> ModelVersion:
    """Register a model version for the category; a duplicate name@version is a conflict. A built-in model's
    `artifact` is stored with its SHA-256, which governance.predictor checks before every load."""
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
        artifact_sha256=artifact_digest(artifact) if artifact else "",
    )
    model_version.full_clean(exclude=["category"], validate_unique=False)
    try:
        with transaction.atomic():
            save_with_reason(model_version, user=user, reason=reason or "Registered")
            if artifact:
                ModelArtifact.objects.create(model_version=model_version, data=artifact)
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


# The stages where a version is compared with people before it acts on everything (DESIGN.md, ModelVersion).
ROLLOUT_CHECKS = (ModelStatus.SHADOW, ModelStatus.CANARY)


def skipped_stages(current: str, target: str) -> list[str]:
    """The rollout's checks (shadow, canary) that going from `current` to `target` leaves out, in order: [] for a
    step that skips none, a rollback, or undoing one. Allowed, but worth a warning before it is done: a skipped
    shadow never measured the version against people, a skipped canary never let it act on a few cases first."""
    if target == ModelStatus.RETIRED or current == ModelStatus.RETIRED:
        return []
    if current not in MODEL_STATUS_ORDER or target not in MODEL_STATUS_ORDER:
        return []
    start, end = MODEL_STATUS_ORDER.index(ModelStatus(current)), MODEL_STATUS_ORDER.index(ModelStatus(target))
    return [str(status) for status in MODEL_STATUS_ORDER[start + 1 : end] if status in ROLLOUT_CHECKS]


def check_builtin_beats_active(model_version: ModelVersion, status: str) -> None:
    """A built-in version goes past shadow only if it beats the active one on the same held-out cases (see
    governance.promotion_gate); the refusal says by how much it fell short."""
    if model_version.name != BUILTIN_MODEL_NAME:
        return
    active = (
        ModelVersion.objects.filter(category=model_version.category, status=ModelStatus.ACTIVE)
        .exclude(pk=model_version.pk)
        .order_by("-created_at")
        .first()
    )
    shortfalls = promotion_shortfalls(
        metrics=model_version.metrics or {},
        active=active.label if active is not None else None,
        auto_threshold=float(model_version.category.policy.auto_threshold),
    )
    if shortfalls:
        reasons = "; ".join(shortfalls)
        raise ValidationError(
            {"status": f"{model_version.label} may not go to {status}, it does not beat {active}: {reasons}."}
        )


@transaction.atomic
def promote_model_version(*, model_version: ModelVersion, status: str, user: User | None, reason: str) -> ModelVersion:
    """Move a version along its rollout. Promoting one to `active` retires the category's previous active one."""
    reason = require_reason(reason)
    model_version = ModelVersion.objects.select_for_update(no_key=True).get(pk=model_version.pk)
    previous = model_version.status
    check_transition(previous, status)
    if status in (ModelStatus.CANARY, ModelStatus.ACTIVE):
        check_builtin_beats_active(model_version, status)
    if status == ModelStatus.ACTIVE:
        for other in (
            ModelVersion.objects.select_for_update(no_key=True)
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
        model_version.approved_by = user
        model_version.approved_at = timezone.now()
    save_with_reason(model_version, user=user, reason=reason)
    events.record(
        AuditKind.MODEL_STATUS_CHANGED,
        actor=user,
        category_slug=model_version.category.slug,
        payload={"model_version": model_version.label, "from": previous, "to": status, "reason": reason},
    )
    return model_version
