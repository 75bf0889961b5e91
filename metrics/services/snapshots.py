"""Hourly snapshots of every category's figures (`snapshot_metrics`), which the dashboard's trends read.

Each snapshot is one category's completed hour. The job writes the hours that have no snapshot yet, going back
at most `CATCH_UP_HOURS` (so a worker that was down for a night fills the gap), and never rewrites an hour: a
re-run, or two workers at once, change nothing twice (the (category, hour) pair is unique).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.models import Category
from metrics import kpis
from metrics.models import MetricSnapshot

HOUR = timedelta(hours=1)
CATCH_UP_HOURS = 48


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def snapshot_hour(category: Category, hour: datetime, *, with_queues: bool = False) -> MetricSnapshot | None:
    """Store the category's figures for the hour starting at `hour`; None if that hour is stored already.

    `with_queues` adds the queues as they stand now (depth, oldest age): right only for the hour just ended, so
    a backfill of older hours leaves them out rather than record today's queues as the past's."""
    window = kpis.Window(hour, hour + HOUR, "1h")
    cases = kpis.case_counts(category, window)
    decided = kpis.decision_counts(category, window)
    figures: dict[str, Any] = {}
    if cases["volume"] or decided["decisions"]:
        current, _ = kpis.confidence_histograms(category, window)
        figures = {
            "routes": cases["routes"],
            "confidence_histogram": current,
            **kpis.resolution(category, window),
            "review_seconds": kpis.review_seconds(category, window),
        }
    if with_queues:
        figures["queues"] = kpis.queues(category, window.end)
    snapshot = MetricSnapshot(
        category=category,
        hour=hour,
        volume=cases["volume"],
        auto=cases["routes"]["auto"],
        escalated=cases["escalated"],
        waited=cases["waited"],
        breaches=kpis.sla_breaches(category, window),
        verdicts=decided["verdicts"],
        overridden=decided["overridden"],
        audits=decided["audits"],
        confirmed=decided["confirmed"],
        seconds_spent=decided["seconds_spent"],
        time_saved_minutes=kpis.time_saved_minutes(category, cases["volume"], decided["seconds_spent"]),
        figures=figures,
    )
    try:
        with transaction.atomic():
            snapshot.save()
    except IntegrityError:
        return None  # another run stored this hour first
    return snapshot


def snapshot_metrics(*, now: datetime | None = None, catch_up_hours: int = CATCH_UP_HOURS) -> dict[str, Any]:
    """Snapshot every category's completed hours that are not stored yet (the last `catch_up_hours` at most)."""
    now = now or timezone.now()
    last = hour_start(now) - HOUR
    hours = [last - HOUR * back for back in range(catch_up_hours)]
    written = 0
    for category in Category.objects.select_related("policy").order_by("slug"):
        have = set(MetricSnapshot.objects.filter(category=category, hour__gte=hours[-1]).values_list("hour", flat=True))
        for hour in sorted(h for h in hours if h not in have):
            if snapshot_hour(category, hour, with_queues=hour == last) is not None:
                written += 1
    return {"written": written, "up_to": last.isoformat()}
