"""Hourly snapshots: one row per category and completed hour, written once however often the job runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from cases.models import Queue
from metrics.kpis import UTC
from metrics.models import MetricSnapshot
from metrics.services.snapshots import snapshot_metrics
from reviews import services
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_each_completed_hour_is_stored_once_with_its_counts(make_user: Any) -> None:
    category = make_category("snap", auto_threshold=0.9, review_threshold=0.6, audit_rate=0.0)
    rev = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="snap-quick"))
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        auto = make_case(category, confidence=0.95)
        quick = [make_case(category, confidence=0.8) for _ in range(3)]
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        services.decide(case=quick[0], user=rev, action="approve", seconds_spent=30)
        services.decide(case=quick[1], user=rev, action="correct", output={"label": "x"}, seconds_spent=90)

    first = snapshot_metrics(now=T0 + timedelta(hours=2, minutes=2), catch_up_hours=3)
    again = snapshot_metrics(now=T0 + timedelta(hours=2, minutes=30), catch_up_hours=3)

    assert first["written"] == 3 and again["written"] == 0
    hours = list(MetricSnapshot.objects.filter(category=category).values_list("hour", flat=True))
    assert hours == [T0 - timedelta(hours=1), T0, T0 + timedelta(hours=1)]
    nine = MetricSnapshot.objects.get(category=category, hour=T0)
    assert (nine.volume, nine.auto, nine.verdicts, nine.overridden, nine.seconds_spent) == (4, 1, 2, 1, 120)
    assert nine.figures["routes"]["quick_review"] == 3
    assert nine.figures["confidence_histogram"][9] == 1
    empty = MetricSnapshot.objects.get(category=category, hour=T0 - timedelta(hours=1))
    assert (empty.volume, empty.verdicts) == (0, 0)
    # Only the hour just ended records the queues as they stand now; older hours cannot know theirs.
    assert "queues" in MetricSnapshot.objects.get(category=category, hour=T0 + timedelta(hours=1)).figures
    assert "queues" not in nine.figures
    assert auto.pk  # the auto case counted in `auto`


def test_the_job_fills_an_hour_it_missed_and_runs_by_hand() -> None:
    category = make_category("gap")
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        make_case(category, confidence=0.8)
    snapshot_metrics(now=T0 + timedelta(hours=1, minutes=2), catch_up_hours=1)  # stores 09:00
    MetricSnapshot.objects.filter(category=category).delete()  # as if the worker had been down
    with time_machine.travel(T0 + timedelta(hours=3, minutes=2), tick=False):
        call_command("runjob", "snapshot_metrics")
    assert MetricSnapshot.objects.filter(category=category, hour=T0, volume=1).exists()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_store_each_hour_once() -> None:
    category = make_category("race")
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        make_case(category, confidence=0.8)

    def run() -> int:
        try:
            return int(snapshot_metrics(now=T0 + timedelta(hours=1, minutes=2), catch_up_hours=2)["written"])
        finally:
            connection.close()

    if connection.vendor == "sqlite":
        results = [run(), run()]  # SQLite takes one writer at a time: the second run finds the hours stored
    else:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: run(), range(2)))
    assert sum(results) == 2
    assert MetricSnapshot.objects.filter(category=category).count() == 2
