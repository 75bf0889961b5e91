"""The time the KPIs count over: a `Window` as a request names it, and a `Span` (the parts of a window that are
read live from the cases and decisions rather than summed from the hourly snapshots)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_WINDOW = "24h"
# The longest window `since`/`until` may span: a year of hourly trends is the most a person reads.
MAX_WINDOW = timedelta(days=366)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open interval of time [start, end) over which the KPIs count."""

    start: datetime
    end: datetime
    name: str = ""

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def days(self) -> float:
        return self.hours / 24

    def previous(self) -> Window:
        """The window of equal length just before this one (the drift reference)."""
        return Window(self.start - (self.end - self.start), self.start)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name or None, "since": self.start.isoformat(), "until": self.end.isoformat()}

    @classmethod
    def last(cls, name: str, now: datetime | None = None) -> Window:
        end = now or timezone.now()
        return cls(end - WINDOWS[name], end, name)

    @classmethod
    def parse(
        cls, *, window: str | None = None, since: str | None = None, until: str | None = None, now: datetime | None
    ) -> Window:
        """The window a request names: `window` (1h, 24h, 7d, 30d, 90d) or `since` (and optionally `until`), ISO
        8601 with an offset. A ValidationError names the parameter that is wrong."""
        now = now or timezone.now()
        if window is not None and (since is not None or until is not None):
            raise ValidationError({"window": "Give either window or since/until, not both."})
        if since is None and until is not None:
            raise ValidationError({"since": "until needs since: give both, or a window."})
        if since is None:
            name = window or DEFAULT_WINDOW
            if name not in WINDOWS:
                raise ValidationError({"window": f"{name!r} is not a window; choose one of {', '.join(WINDOWS)}."})
            return cls.last(name, now)
        start = _instant("since", since)
        end = _instant("until", until) if until is not None else now
        if end <= start:
            raise ValidationError({"until": "until must be after since."})
        if end - start > MAX_WINDOW:
            raise ValidationError({"since": f"A window may span at most {MAX_WINDOW.days} days."})
        return cls(start, end)


def _instant(field: str, text: str) -> datetime:
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError({field: "Give an ISO 8601 date and time with its offset, e.g. 2026-12-01T09:00:00Z."})
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError({field: "This date and time falls outside the years 1 to 9999 in UTC."}) from exc


@dataclass(frozen=True)
class Span:
    """Some half-open ranges of time [start, end), to read live: a whole window, its edges around the hours the
    snapshots cover, or single hours whose cases changed after their snapshot."""

    ranges: tuple[tuple[datetime, datetime], ...]

    @classmethod
    def of(cls, window: Window) -> Span:
        return cls(((window.start, window.end),))

    @classmethod
    def hours(cls, starts: list[datetime]) -> Span:
        """The hours starting at `starts`, consecutive ones joined into one range."""
        ranges: list[tuple[datetime, datetime]] = []
        for start in sorted(starts):
            if ranges and ranges[-1][1] == start:
                ranges[-1] = (ranges[-1][0], start + HOUR)
            else:
                ranges.append((start, start + HOUR))
        return cls(tuple(ranges))

    def __add__(self, other: Span) -> Span:
        return Span(tuple(r for r in (*self.ranges, *other.ranges) if r[0] < r[1]))

    @property
    def empty(self) -> bool:
        return not any(start < end for start, end in self.ranges)

    def q(self, field: str) -> Q:
        """The condition that `field` (a date and time) falls in the span; nothing matches an empty span."""
        condition = Q(pk__in=[])
        for start, end in self.ranges:
            if start < end:
                condition |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
        return condition
