"""The dashboard's trends: the hourly snapshots summed per bucket (an hour, or a day for longer windows), and the
sparkline a tile draws from them on the server, so it shows without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncHour
from django.utils import timezone

from cases.choices import Route
from governance.models import Category
from metrics import kpis
from metrics.models import MetricSnapshot
from metrics.services.snapshots import hour_start

HOUR = timedelta(hours=1)
ROUTE_ORDER: tuple[str, ...] = (Route.AUTO, Route.QUICK_REVIEW, Route.FULL_REVIEW, Route.SHADOW)


@dataclass(frozen=True)
class Trend:
    """A figure per bucket (an hour for windows up to a day, a day otherwise), from the snapshots."""

    labels: list[str]
    series: dict[str, list[float | None]]
    routes: dict[str, list[int]]
    per: str  # "hour" or "day"
    snapshots: int  # how many snapshot hours there were, 0: no trend yet


def ratio_of(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def snapshot_trend(category: Category, window: kpis.Window) -> Trend:
    """The window's trend from the snapshots of the hours that end inside it, summed per bucket: a bucket's rate is
    the sum of its hours' parts over the sum of their wholes, never an average of rates. One query."""
    daily = window.hours > 24
    first, last = hour_start(window.start), hour_start(window.end - HOUR)
    # Hours stay the snapshots' own UTC hours (a zone half an hour off UTC would cut them in two); days are the
    # site's local days, as people read a date.
    bucket = TruncDay("hour") if daily else TruncHour("hour", tzinfo=UTC)
    columns = ("volume", "auto", "escalated", "waited", "breaches", "verdicts", "overridden", "audits", "confirmed")
    sums: dict[str, Any] = {name: Sum(name) for name in columns}
    sums["time_saved"] = Sum("time_saved_minutes")
    sums["hours"] = Count("id")
    for route in ROUTE_ORDER:
        # The route mix is in each hour's figures (an hour without cases has none: it counts 0).
        sums[f"route_{route}"] = Coalesce(Sum(Cast(KT(f"figures__routes__{route}"), IntegerField())), 0)
    rows = (
        MetricSnapshot.objects.filter(category=category, hour__gte=first, hour__lte=last)
        .annotate(bucket=bucket)
        .values("bucket")
        .annotate(**sums)
        .order_by("bucket")
    )
    by_key: dict[Any, dict[str, Any]] = {_bucket_key(row["bucket"], daily): dict(row) for row in rows}
    keys = _bucket_keys(first, last, daily)
    labels = [key.strftime("%d %b") if daily else timezone.localtime(key).strftime("%H:%M") for key in keys]
    # A bucket with no snapshot is unknown (the job was not running), not zero: its points are gaps.
    picked: list[dict[str, Any]] = [by_key.get(key, {}) for key in keys]

    def ratio(part: str, whole: str) -> list[float | None]:
        return [ratio_of(row.get(part), row.get(whole)) for row in picked]

    series: dict[str, list[float | None]] = {
        "volume": [row.get("volume") for row in picked],
        "auto_rate": ratio("auto", "volume"),
        "override_rate": ratio("overridden", "verdicts"),
        "escalation_rate": ratio("escalated", "volume"),
        "time_saved_minutes": [row.get("time_saved") for row in picked],
        "audited_accuracy": ratio("confirmed", "audits"),
        "sla_breach_rate": ratio("breaches", "waited"),
    }
    routes = {route: [int(row.get(f"route_{route}", 0)) for row in picked] for route in ROUTE_ORDER}
    return Trend(
        labels=labels,
        series=series,
        routes=routes,
        per="day" if daily else "hour",
        snapshots=sum(int(row.get("hours", 0)) for row in picked),
    )


def _bucket_key(bucket: datetime, daily: bool) -> datetime | date:
    return timezone.localtime(bucket).date() if daily else bucket


def _bucket_keys(first: datetime, last: datetime, daily: bool) -> list[Any]:
    if not daily:
        return [first + HOUR * step for step in range(int((last - first) / HOUR) + 1)]
    start, end = timezone.localtime(first).date(), timezone.localtime(last).date()
    return [start + timedelta(days=step) for step in range((end - start).days + 1)]


# --- the sparkline of a tile: drawn on the server, so it shows without JavaScript ---


@dataclass(frozen=True)
class Sparkline:
    path: str
    width: int = 120
    height: int = 28
    band_y: float | None = None
    band_height: float | None = None
    points: int = 0


def sparkline(values: list[float | None], band: tuple[float, float] | None = None) -> Sparkline:
    """An SVG path through the values (a gap where a bucket has nothing to count), with the healthy band shaded."""
    known = [v for v in values if v is not None]
    if not known:
        return Sparkline(path="")
    width, height, pad = 120, 28, 2
    low = min(0.0, *known)
    high = max(*known, band[1] if band else 0.0)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return round(height - pad - (value - low) / span * (height - 2 * pad), 1)

    parts, pen_down = [], False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = round(index * step if len(values) > 1 else width / 2, 1)
        parts.append(f"{'L' if pen_down else 'M'}{x} {y(value)}")
        pen_down = True
    if len(known) == 1 and len(parts) == 1:  # one point: a short dash, so it can be seen
        x_text, y_text = parts[0][1:].split()
        parts.append(f"L{float(x_text) + 3} {y_text}")
    band_y = band_height = None
    if band:
        band_y = y(min(band[1], high))
        band_height = round(y(max(band[0], low)) - band_y, 1)
    return Sparkline(path=" ".join(parts), band_y=band_y, band_height=band_height, points=len(known))
