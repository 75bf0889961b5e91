"""The pause trigger: too many refused outputs pause the category, open an incident and tell the stewards."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Queue
from governance import events
from governance.models import AuditEvent, Category, Incident, Notification
from governance.services import pause_category, resume_category
from metrics.jobs import pause_check
from metrics.services.pause import check_category
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(make_user):
    return make_user("rev", roles=["Reviewer"])


def review_cases(category, reviewer, *, approve: int, reject: int = 0, correct: int = 0):
    for queue in Queue.objects.filter(category=category, kind__in=["quick", "full"]):
        grant_queue(reviewer, queue)
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)  # fresh: grants are read once per user object
    plan = ["approve"] * approve + ["reject"] * reject + ["correct"] * correct
    for action in plan:
        case = make_case(category, confidence=0.8)
        extra = {"reason_code": "wrong_label"} if action == "reject" else {}
        if action == "correct":
            extra = {"output": {"label": "other"}}
        review.decide(case=case, user=reviewer, action=action, **extra)


def test_the_seeds_story_pause_incident_human_first_resume(
    api, make_user, reviewer, django_capture_on_commit_callbacks
):
    category = make_category("refunds", auto_threshold=0.95, review_threshold=0.70)
    steward = make_user("steward", roles=["Model Steward"], email="steward@example.com")
    for i in range(200):
        make_case(category, confidence=[0.99, 0.9, 0.8, 0.6][i % 4])
    # 100 of the 200 went to a person (quick or full); they reject 6 of 100 within 48 hours.
    review_cases(category, reviewer, approve=94, reject=6)
    with django_capture_on_commit_callbacks(execute=True):
        [result] = pause_check(category.pk)
    assert result["paused"] is True
    assert (result["reviewed"], result["not_as_proposed"]) == (100, 6)
    category.refresh_from_db()
    assert category.paused and category.paused_by.username == "system" and "6 of 100" in category.paused_reason
    incident = Incident.objects.get(category=category)
    assert incident.stage == "contain" and incident.trigger == "pause_rule"
    assert [e.stage for e in incident.timeline.all()] == ["detect", "contain"]
    assert Notification.objects.filter(user=steward, kind="category.paused").exists()

    confident = make_case(category, confidence=0.99)
    assert confident.route == "quick_review"

    assign_perm("governance.change_category", steward, category)
    response = api(steward).post("/api/v1/categories/refunds/resume/", {"reason": "new prompt shipped"}, format="json")
    assert response.status_code == 200, response.content
    assert check_category(category.pk)["paused"] is False  # the old evidence does not pause it again

    assert events.verify_chain().ok
    story = list(AuditEvent.objects.filter(category_slug="refunds").values_list("kind", flat=True))
    assert story.index("category.paused") < story.index("incident.opened") < story.index("category.resumed")
    assert story[-1] == "category.resumed"


def test_below_the_minimum_number_of_reviews_nothing_pauses(reviewer):
    category = make_category("cat", pause_min_reviews=20)
    review_cases(category, reviewer, approve=10, reject=9)
    assert check_category(category.pk)["paused"] is False
    assert not Category.objects.get(pk=category.pk).paused


def test_below_the_rejection_rate_nothing_pauses(reviewer):
    category = make_category("cat")
    review_cases(category, reviewer, approve=96, reject=4)
    result = check_category(category.pk)
    assert result["paused"] is False and result["rate"] == 0.04


def test_corrections_count_as_not_approved_as_proposed(reviewer):
    category = make_category("cat")
    review_cases(category, reviewer, approve=18, correct=2)
    assert check_category(category.pk)["paused"] is True


def test_the_window_forgets_decisions_older_than_pause_window_hours(reviewer):
    category = make_category("cat", pause_window_hours=48)
    review_cases(category, reviewer, approve=15, reject=5)
    with time_machine.travel(timezone.now() + timedelta(hours=49)):
        result = check_category(category.pk)
    assert result["paused"] is False and result["reviewed"] == 0


def test_a_resume_is_a_fresh_start(reviewer, make_user):
    category = make_category("cat")
    review_cases(category, reviewer, approve=10, reject=10)
    pause_category(category=category, user=None, reason="manual")
    resume_category(category=category, user=make_user("po"), reason="fixed")
    assert check_category(category.pk)["reviewed"] == 0
    review_cases(category, reviewer, approve=19, reject=1)
    assert check_category(category.pk)["paused"] is True


def test_an_already_paused_category_is_left_alone_and_no_second_incident_opens(reviewer):
    category = make_category("cat")
    review_cases(category, reviewer, approve=10, reject=10)
    assert check_category(category.pk)["paused"] is True
    assert check_category(category.pk)["paused"] is False
    assert Incident.objects.count() == 1


def test_pause_check_runs_by_hand(reviewer, capsys):
    category = make_category("cat")
    review_cases(category, reviewer, approve=10, reject=10)
    call_command("runjob", "pause_check")
    assert Category.objects.get(pk=category.pk).paused


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_checks_at_once_pause_once_and_open_one_incident(make_user):
    from tests.test_concurrency import race

    category = make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"])
    review_cases(category, reviewer, approve=10, reject=10)
    results = race(2, lambda i: check_category(category.pk)["paused"])
    assert sorted(results) == [False, True]
    assert Incident.objects.count() == 1
    assert AuditEvent.objects.filter(kind="category.paused").count() == 1
