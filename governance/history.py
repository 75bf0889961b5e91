"""Stamping simple-history records with who changed something and why, in requests and in jobs alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models

from governance.insert_select import insert_select

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


def history_for_rows(
    queryset: models.QuerySet[Any], *, user: User | None, reason: str, date: datetime, created: bool = False
) -> int:
    """Write one history row per row of `queryset`, as it stands now, in one INSERT ... SELECT: "changed", or
    "created" (`created`: the rows were just inserted, as intake's are).

    What simple-history's `bulk_history_create` records, without loading the rows into Python and sending them
    back: a sweep that moves 10,000 cases writes their history in one statement inside the database. The columns
    are the history model's own tracked fields, selected from the rows, then its bookkeeping. Returns the number
    of rows written.
    """
    historical = queryset.model.history.model
    # The tracked fields: the model's own (its id among them), without the history_* bookkeeping.
    tracked = [field for field in historical._meta.concrete_fields if not field.name.startswith("history_")]
    return insert_select(
        historical,
        [field.name for field in tracked] + ["history_date", "history_change_reason", "history_type", "history_user"],
        queryset.values_list(*[field.attname for field in tracked]),
        constants=[date, short_reason(reason), "+" if created else "~", user.pk if user is not None else None],
    )
