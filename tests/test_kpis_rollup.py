"""A long window's KPIs are summed from the hourly snapshots' parts, and must equal a live reading of the cases
and decisions: with every hour stored, with the edges of a window that does not start on the hour, and after a
stored hour's cases were decided, escalated or audited later."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Queue
from cases.services.sla import sweep
from governance.models import Category
from metrics import kpis
from metrics.kpis.parts import Parts, live_parts, live_parts_by_hour
from metrics.kpis.window import Span
from metrics.models import DailyParts, MetricSnapshot
from metrics.services.snapshots import snapshot_metrics
from reviews import services
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=kpis.UTC)
NOW = T0 + timedelta(hours=30, minutes=20)


def _at(hours: float) -> Any:
    return time_machine.travel(T0 + timedelta(hours=hours), tick=False)


@pytest.fixture
def history(make_user: Any) -> dict[str, Any]:
    """Cases over 30 hours: each hour a few of every route, some decided in the next hours, escalated, audited."""
    with _at(0):
        category = make_category(
            "roll", auto_threshold=0.9, review_threshold=0.6, audit_rate=0.5, sensitive_labels=["fraud"]
        )
    rev = make_user("rev", roles=["Reviewer"])
    for kind in ("quick", "full", "escalation", "audit"):
        grant_queue(rev, Queue.objects.get(slug=f"roll-{kind}"))
    waiting = []
    for hour in range(30):
        with _at(hour + 0.1):
            segment = {"channel": "email" if hour % 2 else "chat"}
            quick = [make_case(category, confidence=0.7 + 0.01 * (hour % 10), segment=segment) for _ in range(3)]
            make_case(category, confidence=0.95, segment=segment)
            full = make_case(category, confidence=0.3, output={"label": "fraud" if hour % 3 else "ok"})
        with _at(hour + 0.5):
            services.decide(case=quick[0], user=rev, action="approve", seconds_spent=10 + hour)
            services.decide(case=quick[1], user=rev, action="correct", output={"label": "fraud"}, seconds_spent=40)
        with _at(hour + 1.5):  # the next hour: a case created in this hour decided after it
            if hour % 4 == 0:
                services.decide(case=full, user=rev, action="escalate", reason_code="policy_legal", seconds_spent=20)
            else:
                services.decide(case=full, user=rev, action="reject", reason_code="other", seconds_spent=25)
        waiting.append(quick[2])
    return {"category": category, "rev": rev, "waiting": waiting}


def _live(category: Category, window: kpis.Window) -> dict[str, Any]:
    MetricSnapshot.objects.filter(category=category).delete()
    return kpis.category_kpis(category, window, now=window.end)


def test_a_window_summed_from_snapshots_equals_a_live_reading(history: dict[str, Any]) -> None:
    category = history["category"]
    window = kpis.Window(T0 + timedelta(minutes=30), NOW)  # neither end on the hour
    live = _live(category, window)
    assert snapshot_metrics(now=NOW, catch_up_hours=48)["written"] == 48

    with CaptureQueriesContext(connection) as queries:
        summed = kpis.category_kpis(category, window, now=window.end)

    assert summed == live
    assert summed["volume"] == 145 and summed["routes"]["auto"] == 29  # the first hour's cases came at 00:06
    # The window and the drift reference each read the hours' stamps, their days, and the hours left.
    tables = [q["sql"] for q in queries.captured_queries]
    assert sum('FROM "metrics_metricsnapshot"' in sql for sql in tables) == 4
    assert sum('FROM "metrics_dailyparts"' in sql for sql in tables) == 2
    assert DailyParts.objects.filter(category=category, day=T0).exists()


def test_a_day_is_summed_once_and_ignored_once_one_of_its_hours_was_read_again(history: dict[str, Any]) -> None:
    category = history["category"]
    window = kpis.Window(T0, NOW)
    snapshot_metrics(now=NOW, catch_up_hours=48)
    day = DailyParts.objects.get(category=category, day=T0)
    # A day's sum is what the window reads for its 24 hours: a wrong sum shows...
    DailyParts.objects.filter(pk=day.pk).update(parts={**day.parts, "volume": day.parts["volume"] + 1000})
    assert kpis.category_kpis(category, window, now=NOW)["volume"] == 1150

    # ... until one of its hours is read again after it (the job then sums the day anew).
    MetricSnapshot.objects.filter(category=category, hour=T0 + timedelta(hours=5)).update(
        parts_at=day.parts_at + timedelta(minutes=1)
    )
    assert kpis.category_kpis(category, window, now=NOW)["volume"] == 150


def test_an_hour_whose_cases_changed_after_its_snapshot_is_read_live(history: dict[str, Any]) -> None:
    category, rev = history["category"], history["rev"]
    window = kpis.Window(T0, NOW)
    snapshot_metrics(now=NOW, catch_up_hours=48)
    before = kpis.category_kpis(category, window, now=window.end)

    later = NOW + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        # Cases created in the first, long-stored hour are decided now: that hour's cohort changed (its
        # outcomes known to the advisor, its fairness, its escalations).
        services.decide(case=history["waiting"][0], user=rev, action="approve", seconds_spent=5)
        services.decide(case=history["waiting"][1], user=rev, action="escalate", reason_code="high_risk")
        after = kpis.category_kpis(category, kpis.Window(T0, later), now=later)
        live = _live(category, kpis.Window(T0, later))

    assert after["volume"] == before["volume"]
    assert after["escalation_rate"] > before["escalation_rate"]
    known = {row["threshold"]: row["known"] for row in after["threshold_advisor"]}
    assert known[0.5] == {row["threshold"]: row["known"] for row in before["threshold_advisor"]}[0.5] + 1
    assert after["fairness"] != before["fairness"]
    assert after == live


def test_cases_the_sla_sweep_moved_up_after_their_snapshot_count_as_escalated(history: dict[str, Any]) -> None:
    category = history["category"]
    snapshot_metrics(now=NOW, catch_up_hours=48)
    before = kpis.category_kpis(category, kpis.Window(T0, NOW), now=NOW)
    later = NOW + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        moved = sweep().moved  # the quick cases waiting past their 24 hours move up to escalation
        after = kpis.category_kpis(category, kpis.Window(T0, later), now=later)
        live = _live(category, kpis.Window(T0, later))

    assert moved > 0
    assert after["escalation_rate"] > before["escalation_rate"]
    assert after == live


def test_the_job_refreshes_the_hours_whose_cases_were_decided_since_its_last_run(history: dict[str, Any]) -> None:
    category, rev = history["category"], history["rev"]
    snapshot_metrics(now=NOW, catch_up_hours=48)
    first_hour = MetricSnapshot.objects.get(category=category, hour=T0)
    assert first_hour.escalated == 1

    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        services.decide(case=history["waiting"][0], user=rev, action="escalate", reason_code="high_risk")
    result = snapshot_metrics(now=NOW + timedelta(hours=1), catch_up_hours=48)
    again = snapshot_metrics(now=NOW + timedelta(hours=1, minutes=10), catch_up_hours=48)

    first_hour.refresh_from_db()
    assert first_hour.escalated == 2
    assert result["refreshed"] >= 1 and again["refreshed"] == 0 and again["written"] == 0
    window = kpis.Window(T0, NOW + timedelta(hours=1))
    summed = kpis.category_kpis(category, window, now=NOW + timedelta(hours=1))
    assert summed == _live(category, window)


def test_snapshots_of_another_shape_are_read_live(history: dict[str, Any]) -> None:
    category = history["category"]
    window = kpis.Window(T0, NOW)
    snapshot_metrics(now=NOW, catch_up_hours=48)
    MetricSnapshot.objects.filter(category=category, hour=T0 + timedelta(hours=3)).update(parts={"version": 0})

    assert kpis.category_kpis(category, window, now=NOW) == _live(category, window)


def test_the_sum_of_stored_parts_is_read_once_until_a_row_is_written_again(history: dict[str, Any]) -> None:
    category = history["category"]
    window = kpis.Window(T0, NOW)
    snapshot_metrics(now=NOW, catch_up_hours=48)
    first = kpis.category_kpis(category, window, now=NOW)
    with CaptureQueriesContext(connection) as queries:
        again = kpis.category_kpis(category, window, now=NOW)
    assert again == first
    assert not any('"parts" FROM' in q["sql"] or '."parts" AS' in q["sql"] for q in queries.captured_queries)

    # A refreshed hour has a new token: the sum is read anew, and stays equal to a live reading.
    snapshot = MetricSnapshot.objects.get(category=category, hour=T0 + timedelta(hours=2))
    parts = {**snapshot.parts, "volume": snapshot.parts["volume"] + 7}
    MetricSnapshot.objects.filter(pk=snapshot.pk).update(parts=parts, parts_token=uuid.uuid4())
    DailyParts.objects.filter(category=category).delete()
    assert kpis.category_kpis(category, window, now=NOW)["volume"] == first["volume"] + 7


def test_a_backfill_reads_each_hour_as_a_reading_of_that_hour_alone(history: dict[str, Any]) -> None:
    category = history["category"]
    with_sweep = NOW + timedelta(minutes=5)
    with time_machine.travel(with_sweep, tick=False):
        sweep()  # breaches too, in the hour under way
    end = T0 + timedelta(hours=31)
    by_hour = live_parts_by_hour(category, T0, end)

    hours = [T0 + timedelta(hours=n) for n in range(31)]
    assert set(by_hour) <= set(hours)
    for hour in hours:
        alone = live_parts(category, Span.hours([hour]))
        assert by_hour.get(hour, Parts()).as_json() == alone.as_json(), hour
