"""Alert rules: defaults for every category, each kind firing on its KPI, once per window, notify or pause."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from cases.models import Case, Queue
from governance.models import Category, Incident, Notification
from metrics.models import Alert, AlertRule
from metrics.services.alerts import evaluate
from metrics.stats import psi, wilson_interval
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category():
    return make_category("cat")


@pytest.fixture
def reviewer(make_user, category):
    user = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(user, queue)
    return type(user).objects.get(pk=user.pk)


def rule(category, kind, **changes):
    alert_rule = AlertRule.objects.get(category=category, kind=kind)
    for name, value in changes.items():
        setattr(alert_rule, name, value)
    alert_rule.save()
    return alert_rule


def decide_many(category, reviewer, actions, **extra):
    for action in actions:
        case = make_case(category, confidence=0.8)
        kwargs = dict(extra)
        if action in ("reject", "escalate"):
            kwargs["reason_code"] = "other"
        if action == "correct":
            kwargs["output"] = {"label": "x"}
        review.decide(case=case, user=reviewer, action=action, **kwargs)


def test_every_new_category_gets_the_five_default_rules(category):
    kinds = set(AlertRule.objects.filter(category=category).values_list("kind", flat=True))
    assert kinds == {"override_rate", "escalation_spike", "resolution_time", "confidence_drift", "rubber_stamping"}


def test_the_override_rate_rule_fires_once_per_window_and_notifies_stewards(
    category, reviewer, make_user, django_capture_on_commit_callbacks
):
    steward = make_user("steward", roles=["Model Steward"])
    decide_many(category, reviewer, ["approve"] * 14 + ["reject"] * 6)
    override = rule(category, "override_rate")
    with django_capture_on_commit_callbacks(execute=True):
        [alert] = evaluate(override)
    assert alert.value == pytest.approx(0.30)
    assert evaluate(override) == []
    assert Notification.objects.filter(user=steward, kind="alert.override_rate").exists()


def test_a_pause_rule_pauses_the_category_and_opens_an_incident(category, reviewer):
    decide_many(category, reviewer, ["approve"] * 10 + ["correct"] * 10)
    [alert] = evaluate(rule(category, "override_rate", action="pause"))
    assert Category.objects.get(pk=category.pk).paused
    assert alert.incident == Incident.objects.get(trigger="alert")


def test_an_escalation_spike_against_the_previous_day(category, reviewer):
    now = timezone.now()
    with time_machine.travel(now - timedelta(hours=5)):
        decide_many(category, reviewer, ["approve"] * 18 + ["escalate"] * 2)  # 10 % yesterday
    decide_many(category, reviewer, ["approve"] * 15 + ["escalate"] * 5)  # 25 % in the last hour
    [alert] = evaluate(rule(category, "escalation_spike"), now=now + timedelta(minutes=1))
    assert alert.details["baseline"] == pytest.approx(0.10)
    assert alert.value == pytest.approx(1.5)


def test_resolution_time_doubling(category, reviewer):
    now = timezone.now()
    for minutes, when in ((10, now - timedelta(hours=30)), (25, now - timedelta(hours=2))):
        for _ in range(20):
            with time_machine.travel(when - timedelta(minutes=minutes), tick=False):
                case = make_case(category, confidence=0.8)
            with time_machine.travel(when, tick=False):
                review.decide(case=case, user=reviewer, action="approve")
    [alert] = evaluate(rule(category, "resolution_time"), now=now)
    assert alert.value == pytest.approx(2.5)


def test_confidence_drift_by_psi(category):
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=3)):
        for i in range(200):
            make_case(category, confidence=0.90 + (i % 10) / 100)
    for i in range(200):
        make_case(category, confidence=0.50 + (i % 10) / 100)
    [alert] = evaluate(rule(category, "confidence_drift"), now=now + timedelta(minutes=1))
    assert alert.value >= 0.2


def test_rubber_stamping_names_the_reviewer(category, reviewer):
    decide_many(category, reviewer, ["approve"] * 50, seconds_spent=1)
    [alert] = evaluate(rule(category, "rubber_stamping"))
    assert alert.subject == "rev"
    assert alert.details["median_seconds"] == 1


def test_careful_reviewers_are_not_flagged(category, reviewer):
    decide_many(category, reviewer, ["approve"] * 50, seconds_spent=40)
    assert evaluate(rule(category, "rubber_stamping")) == []


def test_alert_check_runs_by_hand(category, reviewer):
    decide_many(category, reviewer, ["approve"] * 14 + ["reject"] * 6)
    call_command("runjob", "alert_check")
    assert Alert.objects.filter(rule__kind="override_rate").count() == 1
    assert Case.objects.filter(category=category).exists()


def test_psi_and_wilson():
    same = [i / 100 for i in range(100)]
    assert psi(same, same) == pytest.approx(0.0)
    assert psi(same, [0.95] * 100) > 0.2
    low, high = wilson_interval(45, 50)
    assert 0.78 < low < 0.8 and 0.95 < high < 0.97
    assert wilson_interval(0, 0) == (0.0, 1.0)
