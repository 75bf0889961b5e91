"""Filters shared by every app's filtersets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class InRangeIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, handed on in UTC.

    Any offset Python accepts (up to a day) is fine here, but PostgreSQL takes offsets only up to 15:59, and
    `9999-12-31T23:59-20:00` is no instant at all in UTC: both were 500s. In UTC, or refused as out of range.
    """

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(
                "This date and time with its offset falls outside the years 1 to 9999 in UTC.", code="invalid"
            ) from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = InRangeIsoDateTimeField


class IdField(forms.IntegerField):
    """A row id: a whole number a database column can hold (a bigger one was an overflow in the driver)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        kwargs.setdefault("error_messages", {"invalid": "Must be an id (a whole number)."})
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.NumberFilter):
    """Filter on an id column (`category_id`, `queue_id`, `case`...)."""

    # A whole number, not NumberFilter's decimal: the stubs pin NumberFilter's field to a DecimalField.
    field_class = IdField  # type: ignore[assignment]
