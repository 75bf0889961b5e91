"""seed_demo's history: backdated work through the real services, with the stories the dashboard should show.

The history is seeded once for the module (eight days: a week of drift and a day before it, the least that gives
the 7-day drift figure a reference), inside a transaction that is rolled back when the module is done, so the
other modules never see it; each test runs in its own savepoint inside it, as usual. The clock is frozen at one
instant for the seed and every read, so the windows hold the same cases on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from cases.models import Case, SlaBreach
from governance.models import AuditEvent, Category
from metrics import kpis
from metrics.models import MetricSnapshot
from reviews.models import Decision, Label
from tests.test_seed_demo import counts

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 14, 20, tzinfo=UTC)
DAYS = 8


def seed() -> str:
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--cases", "40", "--days", str(DAYS), stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module", autouse=True)
def history(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Seed once, keep it for the module's tests, and roll it back afterwards (as TestCase.setUpTestData does)."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield seed()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def figures(slug: str, window: str = "7d") -> dict[str, Any]:
    category = Category.objects.get(slug=slug)
    return kpis.category_kpis(category, kpis.Window.last(window, NOW), now=NOW)


def test_history_is_backdated_across_the_days_before_now(history: str) -> None:
    history_cases = Case.objects.filter(external_id__contains="-H")
    days = {created.date() for created in history_cases.values_list("created_at", flat=True)}
    assert len(days) >= DAYS
    assert min(history_cases.values_list("created_at", flat=True)) < NOW - timedelta(days=DAYS - 1)
    assert max(history_cases.values_list("created_at", flat=True)) < NOW
    # Every kind of human work happened in the past, dated by the service that recorded it.
    old = Decision.objects.filter(created_at__lt=NOW - timedelta(days=1))
    assert {"approve", "correct", "reject", "escalate", "confirm"} <= set(old.values_list("action", flat=True))
    assert old.filter(batch_id__isnull=False, actor__username="reviewer-sam").exists()
    people = {"reviewer", "reviewer-lea", "reviewer-sam", "escalation"}
    assert set(old.values_list("actor__username", flat=True)) == people
    assert SlaBreach.objects.filter(detected_at__lt=NOW - timedelta(days=1)).exists()
    decided_events = AuditEvent.objects.filter(kind="case.decided", created_at__lt=NOW - timedelta(days=1))
    assert decided_events.count() >= 100
    # The live stream still arrives now, on top of the history.
    assert Case.objects.exclude(external_id__contains="-H").filter(created_at=NOW).count() == 40


def test_the_drifting_category_has_a_7_day_psi_of_at_least_0_2(history: str) -> None:
    assert figures("lead-qualification")["drift_psi"] >= 0.2


def test_the_unevenly_served_region_is_flagged_by_the_four_fifths_rule(history: str) -> None:
    region = figures("support-triage")["fairness"]["region"]
    assert region["flag"]
    assert region["disparity_ratio"] < 0.8
    by_value = {value["value"]: value for value in region["values"]}
    assert by_value["LATAM"]["n"] >= 20
    assert by_value["LATAM"]["approval_rate"] == min(v["approval_rate"] for v in by_value.values() if v["n"] >= 20)


def test_the_rubber_stamper_is_flagged_and_nobody_else(history: str) -> None:
    reviewers = {row["username"]: row for row in figures("refund-requests")["reviewers"]}
    assert reviewers["reviewer-sam"]["rubber_stamp"]
    assert reviewers["reviewer-sam"]["decisions"] >= 50
    assert not any(row["rubber_stamp"] for name, row in reviewers.items() if name != "reviewer-sam")


def test_the_threshold_advisor_has_rows_with_enough_known_outcomes(history: str) -> None:
    for slug in ("support-triage", "refund-requests", "lead-qualification"):
        advised = [row for row in figures(slug)["threshold_advisor"] if row["enough_data"]]
        assert advised, slug
        assert all(row["known"] >= kpis.ADVISOR_MIN_KNOWN and row["error_rate"] is not None for row in advised)


def test_the_certified_reviewers_labels_pass_the_gate_and_the_rubber_stampers_do_not(history: str) -> None:
    gated = set(Label.objects.filter(passed_gate=True).values_list("reviewer__username", flat=True))
    assert gated and gated <= {"reviewer", "reviewer-lea"}
    assert not Label.objects.filter(reviewer__username="reviewer-sam", passed_gate=True).exists()


def test_hourly_snapshots_cover_the_history(history: str) -> None:
    last_hour = NOW.replace(minute=0) - timedelta(hours=1)
    for category in Category.objects.all():
        hours = list(MetricSnapshot.objects.filter(category=category).values_list("hour", flat=True))
        assert len(hours) == DAYS * 24
        assert (min(hours), max(hours)) == (last_hour - timedelta(hours=DAYS * 24 - 1), last_hour)
        assert sum(MetricSnapshot.objects.filter(category=category).values_list("volume", flat=True)) > 0


def test_a_second_run_adds_nothing_to_the_history(history: str) -> None:
    before = counts()
    output = seed()
    assert counts() == before
    assert f"a {DAYS}-day history of 0 cases" in output
    assert "0 metric snapshots" in output
