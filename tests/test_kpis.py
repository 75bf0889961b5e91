"""The KPIs of DESIGN.md on a small hand-built story, where each figure has one right answer: through
`metrics.kpis` and through `GET /api/v1/metrics/{category}/`, with and without the grant, at the window's edges."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from cases.services.sla import sweep
from governance.models import Category
from metrics import kpis
from metrics.stats import wilson_interval
from reviews import services
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=kpis.UTC)
NOW = T0 + timedelta(hours=6)


def _at(minutes: float) -> Any:
    return time_machine.travel(T0 + timedelta(minutes=minutes), tick=False)


@pytest.fixture
def story(make_user: Any) -> dict[str, Any]:
    """14 cases created at T0 and decided over the next minutes (see each line), then an SLA sweep at T0 + 5 h."""
    with _at(0):
        category = make_category(
            "story", auto_threshold=0.9, review_threshold=0.6, audit_rate=1.0, sensitive_labels=["fraud"]
        )
        Category.objects.filter(pk=category.pk).update(baseline_minutes_per_case=Decimal("10"))
        category.refresh_from_db()
        rev = make_user("rev", roles=["Reviewer"])
        auditor = make_user("auditor", roles=["Reviewer"])
        for kind in ("quick", "full", "escalation"):
            grant_queue(rev, Queue.objects.get(slug=f"story-{kind}"))
        grant_queue(auditor, Queue.objects.get(slug="story-audit"))
        email, chat = {"channel": "email"}, {"channel": "chat"}
        auto = [make_case(category, confidence=0.95, segment=email) for _ in range(4)]  # auto, all drawn for audit
        quick = [make_case(category, confidence=0.8, segment=chat) for _ in range(7)]
        full = [make_case(category, confidence=0.3, segment=chat) for _ in range(2)]
        fraud = make_case(category, confidence=0.95, output={"label": "fraud"}, segment=chat)  # sensitive: full
    steps: list[tuple[int, Case, User, dict[str, Any]]] = [
        (1, quick[0], rev, {"action": "approve", "seconds_spent": 10}),
        (2, quick[1], rev, {"action": "approve", "seconds_spent": 20}),
        (3, quick[2], rev, {"action": "approve", "seconds_spent": 30}),
        (4, quick[3], rev, {"action": "correct", "output": {"label": "billing"}, "seconds_spent": 40}),
        (5, quick[4], rev, {"action": "reject", "reason_code": "other", "seconds_spent": 50}),
        (6, quick[5], rev, {"action": "escalate", "reason_code": "policy_legal", "seconds_spent": 60}),
        (7, quick[5], rev, {"action": "approve", "seconds_spent": 70}),  # in the escalation queue
        (8, full[0], rev, {"action": "approve", "seconds_spent": 80}),
        (9, fraud, rev, {"action": "correct", "output": {"label": "ok"}, "seconds_spent": 90}),
        (10, quick[6], rev, {"action": "correct", "output": {"label": "fraud"}, "seconds_spent": 100}),
        (11, auto[0], auditor, {"action": "confirm", "seconds_spent": 5}),
        (12, auto[1], auditor, {"action": "confirm", "seconds_spent": 5}),
        (13, auto[2], auditor, {"action": "confirm", "seconds_spent": 5}),
        (14, auto[3], auditor, {"action": "flag", "output": {"label": "refund"}, "reason_code": "wrong_label",
                                "seconds_spent": 5}),
    ]  # fmt: skip
    for minute, case, user, decision in steps:
        with _at(minute):
            services.decide(case=case.pk, user=user, **decision)
    with _at(5 * 60):
        sweep()  # full[1] waited past the full queue's 4 h: one breach, moved up to escalation
    return {"category": category, "rev": rev, "auditor": auditor}


def test_every_figure_of_the_story(story: dict[str, Any]) -> None:
    figures = kpis.category_kpis(story["category"], kpis.Window.last("24h", NOW), now=NOW)

    assert figures["volume"] == 14
    assert figures["routes"] == {"auto": 4, "quick_review": 7, "full_review": 3, "shadow": 0}
    assert figures["auto_rate"] == pytest.approx(4 / 14)
    # 9 human verdicts on non-shadow cases (audits are not verdicts here), 4 of them not an approve.
    assert figures["override_rate"] == pytest.approx(4 / 9)
    # One escalated by hand, one moved up by the SLA sweep.
    assert figures["escalation_rate"] == pytest.approx(2 / 14)
    # Made final by a person after 1, 2, 3, 4, 5, 7, 8, 9 and 10 minutes: nearest-rank median and p90.
    assert figures["resolution_minutes"] == {"median": 5.0, "p90": 10.0}
    # 14 timed decisions: 5, 5, 5, 5, 10, 20, ... 100 seconds.
    assert figures["review_seconds"] == {"median": 30, "p90": 90}
    # 4 auto + 9 by people made final over 24 hours.
    assert figures["throughput_per_hour"] == pytest.approx(13 / 24, abs=1e-4)
    # 14 cases x 10 baseline minutes, less 570 seconds people spent.
    assert figures["time_saved_minutes"] == pytest.approx(140 - 9.5)
    low, high = wilson_interval(3, 4)
    assert figures["audited_accuracy"] == {"n": 4, "rate": 0.75, "low": low, "high": high}
    assert figures["sla_breach_rate"] == pytest.approx(1 / 14)
    queues = {q["slug"]: q for q in figures["queues"]}
    assert queues["story-escalation"]["depth"] == 1 and queues["story-escalation"]["overdue"] == 0
    assert queues["story-audit"]["depth"] == 0
    assert figures["confidence_histogram"] == [0, 0, 0, 2, 0, 0, 0, 0, 7, 5]
    assert figures["drift_psi"] is None  # nothing in the previous 24 hours to compare with
    assert figures["sensitive_labels"] == {"fraud": {"n": 1, "false_positive_rate": 1.0, "false_negative_rate": 1.0}}
    channel = figures["fairness"]["channel"]
    assert channel["values"] == [
        {"value": "chat", "n": 9, "approval_rate": pytest.approx(5 / 9)},
        {"value": "email", "n": 4, "approval_rate": 0.75},
    ]
    assert (channel["disparity_ratio"], channel["flag"]) == (None, False)  # under 20 cases a value
    people = {row["username"]: row for row in figures["reviewers"]}
    assert people["rev"] | {"per_hour": None} == {
        "username": "rev",
        "decisions": 9,
        "per_hour": None,
        "median_seconds": 50,
        "approval_rate": pytest.approx(5 / 9),
        "kappa": None,
        "rubber_stamp": False,
        "floor_seconds": 5,
    }
    assert people["rev"]["per_hour"] == pytest.approx(9 / (490 / 3600), abs=0.01)
    assert (people["auditor"]["decisions"], people["auditor"]["approval_rate"]) == (4, 0.75)
    assert figures["shadow_agreement"] == {"n": 0, "rate": None, "low": None, "high": None}
    first = figures["threshold_advisor"][0]
    assert len(figures["threshold_advisor"]) == 50
    assert first["threshold"] == 0.5 and first["would_act_share"] == pytest.approx(12 / 14)
    assert first["known"] == 12 and first["enough_data"] is False and first["error_rate"] is None
    assert first["review_hours_per_day"] == pytest.approx(2 * (570 / 14) / 3600, abs=0.01)


def test_a_window_counts_from_its_start_up_to_but_not_including_its_end(story: dict[str, Any]) -> None:
    category = story["category"]
    exactly = kpis.Window(T0, T0 + timedelta(hours=1))
    just_after = kpis.Window(T0 + timedelta(microseconds=1), T0 + timedelta(hours=1))
    just_before = kpis.Window(T0 - timedelta(hours=1), T0)
    assert kpis.case_counts(category, exactly)["volume"] == 14
    assert kpis.case_counts(category, just_after)["volume"] == 0
    assert kpis.case_counts(category, just_before)["volume"] == 0


def test_an_empty_window_answers_none_for_its_rates(story: dict[str, Any]) -> None:
    figures = kpis.category_kpis(story["category"], kpis.Window.last("1h", T0 + timedelta(days=3)))
    assert figures["volume"] == 0
    assert figures["auto_rate"] is None and figures["override_rate"] is None
    assert figures["resolution_minutes"] == {"median": None, "p90": None}
    assert figures["confidence_histogram"] == [0] * 10


def test_the_kpis_cost_the_same_queries_whatever_the_data(story: dict[str, Any]) -> None:
    category = story["category"]
    window = kpis.Window.last("24h", NOW)
    kpis.category_kpis(category, window, now=NOW)  # the category's policy is read once and kept
    with CaptureQueriesContext(connection) as small:
        kpis.category_kpis(category, window, now=NOW)
    with _at(30):
        for _ in range(30):
            make_case(category, confidence=0.8, segment={"channel": "phone", "tier": "gold"})
    with CaptureQueriesContext(connection) as larger:
        kpis.category_kpis(category, window, now=NOW)
    assert len(larger) == len(small)


def test_fairness_flags_a_value_under_four_fifths_of_the_best(make_user: Any) -> None:
    category = make_category("fair", auto_threshold=0.9, review_threshold=0.6, audit_rate=0.0)
    rev = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="fair-quick"))
    for _ in range(20):
        make_case(category, confidence=0.95, segment={"region": "north"})  # auto: acted as proposed
    for index in range(20):
        case = make_case(category, confidence=0.8, segment={"region": "south"})
        action = {"action": "approve"} if index % 2 else {"action": "correct", "output": {"label": "other"}}
        services.decide(case=case, user=rev, **action)
    region = kpis.fairness(category, kpis.Window.last("24h"))["region"]
    assert [(v["value"], v["n"], v["approval_rate"]) for v in region["values"]] == [
        ("north", 20, 1.0),
        ("south", 20, 0.5),
    ]
    assert region["disparity_ratio"] == 0.5 and region["flag"] is True


def test_shadow_agreement_counts_blind_reviews_that_agree(make_user: Any) -> None:
    category = make_category("blind", stage="shadow")
    rev = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="blind-full"))
    for label in ("shipping", "shipping", "shipping", "billing"):
        case = make_case(category, confidence=0.9, output={"label": "shipping"})
        services.decide(case=case, user=rev, action="correct", output={"label": label})
    agreement = kpis.category_kpis(category, kpis.Window.last("24h"))["shadow_agreement"]
    low, high = wilson_interval(3, 4)
    assert agreement == {"n": 4, "rate": 0.75, "low": low, "high": high}


def test_drift_compares_the_window_with_the_one_before() -> None:
    category = make_category("drift")
    now = T0 + timedelta(days=2)
    with time_machine.travel(now - timedelta(hours=30), tick=False):
        for index in range(100):
            make_case(category, confidence=0.9 + (index % 10) / 100)
    with time_machine.travel(now - timedelta(hours=2), tick=False):
        for index in range(100):
            make_case(category, confidence=0.5 + (index % 10) / 100)
    figures = kpis.category_kpis(category, kpis.Window.last("24h", now), now=now)
    assert figures["confidence_histogram"][5] == 100
    assert figures["drift_psi"] is not None and figures["drift_psi"] >= 0.2


# --- the API ---


def test_the_api_answers_with_designs_keys_for_whoever_sees_the_category(story: dict[str, Any], api: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        response = api(story["rev"]).get("/api/v1/metrics/story/?window=24h")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {
        "volume", "routes", "auto_rate", "override_rate", "escalation_rate", "resolution_minutes",
        "review_seconds", "throughput_per_hour", "time_saved_minutes", "audited_accuracy", "sla_breach_rate",
        "queues", "confidence_histogram", "drift_psi", "sensitive_labels", "fairness", "reviewers",
        "shadow_agreement", "threshold_advisor",
    }  # fmt: skip
    assert body["volume"] == 14 and body["override_rate"] == pytest.approx(4 / 9)
    # A reviewer sees only their own row.
    assert [row["username"] for row in body["reviewers"]] == ["rev"]


def test_whoever_may_change_the_category_sees_every_reviewer(story: dict[str, Any], api: Any, make_user: Any) -> None:
    owner: User = make_user("owner", roles=["Product Owner"])
    assign_perm("governance.change_category", owner, story["category"])
    curator: User = make_user("curator", roles=["Data Curator"])
    for user in (owner, curator):
        with time_machine.travel(NOW, tick=False):
            body = api(user).get("/api/v1/metrics/story/?window=24h").json()
        assert [row["username"] for row in body["reviewers"]] == ["auditor", "rev"]


def test_a_category_one_may_not_see_is_a_404(story: dict[str, Any], api: Any, make_user: Any) -> None:
    stranger: User = make_user("stranger")
    assert api(stranger).get("/api/v1/metrics/story/").status_code == 404
    assert api(stranger).get("/api/v1/metrics/nowhere/").status_code == 404
    assert api(None).get("/api/v1/metrics/story/").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("window=2h", "window"),
        ("window=24h&since=2026-11-01T00:00:00Z", "window"),
        ("since=yesterday", "since"),
        ("since=2026-11-01T00:00:00", "since"),  # no offset
        ("until=2026-11-01T00:00:00Z", "since"),
        ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"),
        ("since=2024-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),  # longer than a year
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
    ],
)
def test_a_bad_window_is_a_400_naming_the_parameter(story: dict[str, Any], api: Any, query: str, field: str) -> None:
    response = api(story["rev"]).get(f"/api/v1/metrics/story/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_since_and_until_pick_their_own_window(story: dict[str, Any], api: Any) -> None:
    response = api(story["rev"]).get("/api/v1/metrics/story/?since=2026-11-02T09:00:00Z&until=2026-11-02T09:30:00Z")
    assert response.status_code == 200
    body = response.json()
    assert body["volume"] == 14
    assert body["window"] == {"name": None, "since": "2026-11-02T09:00:00+00:00", "until": "2026-11-02T09:30:00+00:00"}
