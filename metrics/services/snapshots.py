"""Hourly snapshots of every category's figures (`snapshot_metrics`), which the dashboard's trends and the KPIs of
longer windows read.

Each snapshot is one category's completed hour: its headline counts, its figures, and its additive parts
(`metrics.kpis.parts`). The job writes the hours that have no snapshot yet, going back at most `CATCH_UP_HOURS`
(so a worker that was down for a night fills the gap); a re-run, or two workers at once, store each hour once
(the (category, hour) pair is unique). It also refreshes the hours whose cases changed since its last run:
a case created on Monday and escalated on Wednesday changes Monday's escalations, fairness and advisor outcomes,
and the KPIs of a window read an hour's snapshot only while it still holds (`metrics.kpis.rollup`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.models import Category
from metrics import kpis
from metrics.kpis import figures as derive
from metrics.kpis.parts import Parts, live_parts, live_parts_by_hour
from metrics.kpis.rollup import COMMIT_MARGIN, changed_hours, day_floor, day_hours, last_fresh_at
from metrics.kpis.window import Span
from metrics.models import DailyParts, MetricSnapshot

HOUR = timedelta(hours=1)
CATCH_UP_HOURS = 48
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# More missing hours than this are read at once (`live_parts_by_hour`).
BATCH_FROM = 3


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _hour_values(
    category: Category, hour: datetime, *, with_queues: bool, now: datetime, parts: Parts | None = None
) -> dict[str, Any]:
    """An hour's snapshot columns, figures and parts: `parts` if read already, or read live (a query a part)."""
    window = kpis.Window(hour, hour + HOUR, "1h")
    parts = parts if parts is not None else live_parts(category, Span.of(window))
    cases = derive.case_figures(parts)
    decided = derive.decision_figures(parts)
    figures: dict[str, Any] = {}
    if parts.volume or parts.decisions:
        resolved = derive.resolution_figures(parts, window)
        figures = {
            "routes": cases["routes"],
            "confidence_histogram": parts.histogram,
            **resolved,
            "review_seconds": derive.review_seconds_figures(parts),
        }
    if with_queues:
        figures["queues"] = kpis.queues(category, window.end)
    return {
        "volume": cases["volume"],
        "auto": cases["routes"]["auto"],
        "escalated": cases["escalated"],
        "waited": cases["waited"],
        "breaches": parts.breaches,
        "verdicts": decided["verdicts"],
        "overridden": decided["overridden"],
        "audits": decided["audits"],
        "confirmed": decided["confirmed"],
        "seconds_spent": decided["seconds_spent"],
        "time_saved_minutes": kpis.time_saved_minutes(category, cases["volume"], decided["seconds_spent"]),
        "figures": figures,
        "parts": parts.as_json(),
        "parts_at": now,
        "parts_token": uuid.uuid4(),
    }


def snapshot_hour(
    category: Category,
    hour: datetime,
    *,
    with_queues: bool = False,
    now: datetime | None = None,
    parts: Parts | None = None,
) -> MetricSnapshot | None:
    """Store the category's figures for the hour starting at `hour`; None if that hour is stored already.

    `with_queues` adds the queues as they stand now (depth, oldest age): right only for the hour just ended, so
    a backfill of older hours leaves them out rather than record today's queues as the past's. `parts` are the
    hour's, when a backfill read many hours at once."""
    values = _hour_values(category, hour, with_queues=with_queues, now=now or timezone.now(), parts=parts)
    snapshot = MetricSnapshot(category=category, hour=hour, **values)
    try:
        with transaction.atomic():
            snapshot.save()
    except IntegrityError:
        return None  # another run stored this hour first
    return snapshot


def refresh_hour(snapshot: MetricSnapshot, *, now: datetime) -> None:
    """Read a stored hour again, its cases having changed since (its queues, a picture of that moment, stay)."""
    values = _hour_values(snapshot.category, snapshot.hour, with_queues=False, now=now)
    if "queues" in snapshot.figures:
        values["figures"]["queues"] = snapshot.figures["queues"]
    MetricSnapshot.objects.filter(pk=snapshot.pk).update(**values)


def roll_day(category: Category, day: datetime) -> bool:
    """Sum a complete UTC day's 24 hourly parts into its `DailyParts` row (replacing an older sum); False when
    the day is not complete yet, or one of its hours holds parts of another shape."""
    rows = list(
        MetricSnapshot.objects.filter(category=category, hour__in=day_hours(day), parts_at__isnull=False)
        .order_by()
        .values_list("parts", "parts_at")
    )
    if len(rows) < 24:
        return False
    total = Parts()
    stamps = [at for _, at in rows if at is not None]
    for stored, _ in rows:
        parts = Parts.from_json(stored)
        if parts is None:
            return False
        total += parts
    built_at = max(stamps)
    try:
        with transaction.atomic():
            DailyParts.objects.update_or_create(
                category=category,
                day=day,
                defaults={"parts": total.as_json(), "parts_at": built_at, "parts_token": uuid.uuid4()},
            )
    except IntegrityError:
        return False  # another run summed it at the same moment
    return True


def snapshot_metrics(*, now: datetime | None = None, catch_up_hours: int = CATCH_UP_HOURS) -> dict[str, Any]:
    """Snapshot every category's completed hours that are not stored yet (the last `catch_up_hours` at most), and
    refresh the stored hours whose cases changed since the last run."""
    now = now or timezone.now()
    last = hour_start(now) - HOUR
    hours = [last - HOUR * back for back in range(catch_up_hours)]
    written = refreshed = days = 0
    for category in Category.objects.select_related("policy").order_by("slug"):
        touched: set[datetime] = set()
        since = last_fresh_at(category)
        if since is not None:
            for hour in sorted(changed_hours(category, EARLIEST, now, since - COMMIT_MARGIN)):
                snapshot = (
                    MetricSnapshot.objects.filter(category=category, hour=hour).select_related("category").first()
                )
                if snapshot is not None:
                    refresh_hour(snapshot, now=now)
                    refreshed += 1
                    touched.add(hour)
        have = set(MetricSnapshot.objects.filter(category=category, hour__gte=hours[-1]).values_list("hour", flat=True))
        missing = sorted(h for h in hours if h not in have)
        # A backfill of many hours reads them all in one grouped query a part, not a few queries an hour.
        read = live_parts_by_hour(category, missing[0], missing[-1] + HOUR) if len(missing) > BATCH_FROM else {}
        for hour in missing:
            parts = read.get(hour, Parts()) if len(missing) > BATCH_FROM else None
            if snapshot_hour(category, hour, with_queues=hour == last, now=now, parts=parts) is not None:
                written += 1
                touched.add(hour)
        for day in sorted({day_floor(hour) for hour in touched}):
            days += roll_day(category, day)
    return {"written": written, "refreshed": refreshed, "days": days, "up_to": last.isoformat()}
