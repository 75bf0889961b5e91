"""A window's parts: the hourly snapshots' parts for the hours they cover, and the rest read live.

A month holds about a million decisions; reading them all for every dashboard view costs seconds. The snapshot
of an hour keeps that hour's parts (`metrics.kpis.parts`), so a window is summed from its hours. Two things are
read live instead, so that the sum always equals a live reading:
- the edges: the part of the window before and after the longest run of snapshot hours inside it (the hour now
  under way, an hour the job has not reached, a window that does not start on the hour);
- the hours whose cases changed after their snapshot: a case created in an hour may be decided, audited,
  escalated or moved on by the SLA sweep days later. Every such change writes the case's history, and the
  snapshot job refreshes the hours whose cases changed since its last run, so only the hours touched since that
  run are read live (`changed_hours`).

A month is 720 hours: the job also sums each complete UTC day into one row (`DailyParts`), so a month reads about
30 days and the hours at its ends.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import caches
from django.db.models import Max
from django.db.models.functions import TruncHour

from cases.models import Case
from governance.models import Category
from metrics.kpis.parts import SECTIONS, Parts, live_parts
from metrics.kpis.window import HOUR, Span, Window
from metrics.models import DailyParts, MetricSnapshot

# A window this short is read live whole: its rows cost less than finding its snapshots.
LIVE_UP_TO = timedelta(hours=6)
# More changed hours than this and the window is read live whole (the snapshot job has not run for a while).
MAX_CHANGED_HOURS = 240
# The cache of stored sums (`hitl_project.settings.CACHES`) and how long an entry may live: a new snapshot hour
# changes the key anyway, so an hour or two is all an entry is ever read.
CACHE_ALIAS = "kpis"
CACHE_SECONDS = 2 * 3600
# A decision written just before a snapshot run may commit just after it: look back this much further.
COMMIT_MARGIN = timedelta(minutes=10)


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def changed_hours(category: Category, start: datetime, end: datetime, since: datetime) -> set[datetime]:
    """The hours in [start, end) whose cases changed at or after `since`: decided, audited, moved by the SLA sweep
    or reassigned. Each such change writes the case's history, so one query over the history's recent rows."""
    hours = (
        Case.history.filter(category_id=category.pk, history_date__gte=since, created_at__gte=start, created_at__lt=end)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values_list("hour", flat=True)
        .order_by()
        .distinct()
    )
    return {hour.astimezone(UTC) for hour in hours}


def _longest_run(hours: list[datetime]) -> tuple[datetime, datetime] | None:
    """The longest run of consecutive hours, as [first, end)."""
    best: tuple[datetime, datetime] | None = None
    run_start: datetime | None = None
    previous: datetime | None = None
    for hour in sorted(hours):
        if previous is None or hour != previous + HOUR:
            run_start = hour
        assert run_start is not None
        if best is None or hour + HOUR - run_start > best[1] - best[0]:
            best = (run_start, hour + HOUR)
        previous = hour
    return best


def day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_hours(day: datetime) -> list[datetime]:
    return [day + HOUR * index for index in range(24)]


def window_parts(category: Category, window: Window, sections: frozenset[str] = SECTIONS) -> Parts:
    """The parts of `sections` over `window`: summed from the daily and hourly parts where they hold, read live
    elsewhere. A fixed number of queries: the stored hours' stamps, the changed hours, the days, the hours left,
    and one live query per section."""
    first, end = hour_ceil(window.start), hour_floor(window.end)
    if end - first < LIVE_UP_TO:
        return live_parts(category, Span.of(window), sections)
    rows = (
        MetricSnapshot.objects.filter(category=category, hour__gte=first, hour__lt=end, parts_at__isnull=False)
        .order_by()
        .values_list("hour", "parts_at", "parts_token")
    )
    stamps: dict[datetime, datetime] = {}
    tokens: dict[datetime, Any] = {}
    for hour, parts_at, token in rows:
        if parts_at is not None:
            stamps[hour.astimezone(UTC)], tokens[hour.astimezone(UTC)] = parts_at, token
    run = _longest_run(list(stamps))
    if run is None:
        return live_parts(category, Span.of(window), sections)
    run_start, run_end = run
    fresh_at = max(at for hour, at in stamps.items() if run_start <= hour < run_end)
    changed = changed_hours(category, run_start, run_end, fresh_at - COMMIT_MARGIN)
    if len(changed) > MAX_CHANGED_HOURS:
        return live_parts(category, Span.of(window), sections)
    wanted = {hour for hour in stamps if run_start <= hour < run_end} - changed
    days: list[tuple[datetime, Any]] = []
    for day, built_at, token in (
        DailyParts.objects.filter(category=category, day__gte=run_start, day__lt=run_end)
        .order_by()
        .values_list("day", "parts_at", "parts_token")
    ):
        hours = day_hours(day.astimezone(UTC))
        # A day holds while all its hours are wanted and none was read again after the day was summed.
        if all(hour in wanted for hour in hours) and built_at >= max(stamps[hour] for hour in hours):
            days.append((day, token))
            wanted.difference_update(hours)
    stored, unreadable = _stored_sum(category, days, {hour: tokens[hour] for hour in wanted})
    edges = Span(((window.start, run_start), (run_end, window.end)))
    total = live_parts(category, edges + Span.hours(sorted(changed | unreadable)), sections)
    total += stored
    return total


def _stored_sum(
    category: Category, days: list[tuple[datetime, Any]], hours: dict[datetime, Any]
) -> tuple[Parts, set[datetime]]:
    """The sum of the stored parts of these days and hours, and the hours whose parts could not be read. The sum
    is cached under the rows' tokens (new at every write), so the next request of the hour reads no parts at all:
    decoding and adding a month of them costs more than every live query of the window together."""
    signature = repr((category.pk, sorted((d.isoformat(), str(t)) for d, t in days), sorted(map(str, hours.items()))))
    key = "kpis:stored-sum:" + hashlib.sha256(signature.encode()).hexdigest()
    cache = caches[CACHE_ALIAS]
    cached = cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    total, unreadable = Parts(), set()
    if days:
        for stored in DailyParts.objects.filter(category=category, day__in=[d for d, _ in days]).values_list(
            "parts", flat=True
        ):
            parts = Parts.from_json(stored)
            if parts is None:  # a day is summed only from readable hours, in this shape
                raise ValueError("A day's parts are of another shape than its hours'.")
            total += parts
    if hours:
        for hour, stored in (
            MetricSnapshot.objects.filter(category=category, hour__in=sorted(hours))
            .order_by()
            .values_list("hour", "parts")
        ):
            parts = Parts.from_json(stored)
            if parts is None:
                unreadable.add(hour.astimezone(UTC))
            else:
                total += parts
    cache.set(key, (total, unreadable), CACHE_SECONDS)
    return total, unreadable


def last_fresh_at(category: Category) -> datetime | None:
    """When the snapshot job last stored or refreshed an hour of the category."""
    at: datetime | None = MetricSnapshot.objects.filter(category=category).aggregate(at=Max("parts_at"))["at"]
    return at
