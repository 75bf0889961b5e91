"""Stamping simple-history records with who changed something and why, in requests and in jobs alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def save_with_reason(
    instance: models.Model,
    *,
    user: User | None,
    reason: str,
    update_fields: list[str] | None = None,
) -> None:
    """Save `instance` so that its history row names `user` (None: the system) and `reason`."""
    instance._history_user = user  # type: ignore[attr-defined]
    instance._change_reason = reason  # type: ignore[attr-defined]
    instance.save(update_fields=update_fields)
