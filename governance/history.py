"""Stamping simple-history records with who changed something and why, in requests and in jobs alike."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models

SYSTEM_USERNAME = "system"


def system_user() -> User:
    """The user that jobs act as in history records (inactive: nobody can log in as it)."""
    user, created = User.objects.get_or_create(username=SYSTEM_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


# simple-history keeps a change reason in 100 characters; the full text goes to the audit event.
CHANGE_REASON_LENGTH = 100


def short_reason(reason: str) -> str:
    return reason if len(reason) <= CHANGE_REASON_LENGTH else reason[: CHANGE_REASON_LENGTH - 1] + "…"


def save_with_reason(
    instance: models.Model,
    *,
    user: User | None,
    reason: str,
    update_fields: list[str] | None = None,
) -> None:
    """Save `instance` so that its history row names `user` (None: the system) and `reason`."""
    # simple-history reads these two off the instance when it writes the history row; no model declares them.
    instance._history_user = user  # type: ignore[attr-defined]
    instance._change_reason = short_reason(reason)  # type: ignore[attr-defined]
    instance.save(update_fields=update_fields)


def require_reason(reason: str) -> str:
    """Every change made by hand carries a reason (STYLE.md, History): the reason, stripped, or a ValidationError
    naming the `reason` field."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required: say why, for the audit trail."})
    return reason
