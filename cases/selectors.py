"""Reads of cases and queues that are more than a one-line filter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Count, F, IntegerField, Min, Q, Value
from django.db.models.functions import Floor, Least

from cases.choices import OPEN_STATUSES, Route
from cases.models import Case, Queue

BLIND_NOTE = "Hidden: blind review. The model's output shows once a person has decided the case."


def is_blind(case: Case) -> bool:
    """A shadow case hides the model's output until a person has decided it (blind review)."""
    return case.route == Route.SHADOW and case.status in OPEN_STATUSES


def confidence_bucket(parts: int) -> Least:
    """Which of `parts` equal slices of [0, 1] a case's confidence falls in (0 to parts - 1; 1.0 in the last).

    The one bucketing of confidence, in SQL: the KPIs' histogram (tenths) and threshold advisor (hundredths) count
    by it, and the case list filters by it, so a bar and the list it links to hold the same cases, edges included
    (0.29 * 100 is 28.999... in floating point: the bucket says 28, and so does the list)."""
    return Least(Floor(F("confidence") * parts), Value(parts - 1), output_field=IntegerField())


@dataclass(frozen=True)
class QueueStats:
    depth: int = 0
    oldest_created_at: datetime | None = None
    overdue: int = 0
    near_breach: int = 0


def queue_stats(queues: Iterable[Queue], now: datetime) -> dict[int, QueueStats]:
    """Depth, oldest open case, overdue and near-breach counts for these queues, in two queries."""
    queues = list(queues)
    if not queues:
        return {}
    open_cases = Case.objects.waiting().filter(queue__in=queues)
    totals: dict[int, dict[str, Any]] = {
        row["queue_id"]: dict(row)
        for row in open_cases.values("queue_id").annotate(
            depth=Count("id"), oldest=Min("created_at"), overdue=Count("id", filter=Q(due_at__lt=now))
        )
    }
    near_filter = reduce(or_, (Q(queue_id=q.pk, due_at__lte=q.near_breach_after(now)) for q in queues))
    near = {
        row["queue_id"]: row["n"] for row in open_cases.filter(near_filter).values("queue_id").annotate(n=Count("id"))
    }
    return {
        q.pk: QueueStats(
            depth=totals.get(q.pk, {}).get("depth", 0),
            oldest_created_at=totals.get(q.pk, {}).get("oldest"),
            overdue=totals.get(q.pk, {}).get("overdue", 0),
            near_breach=near.get(q.pk, 0),
        )
        for q in queues
    }
