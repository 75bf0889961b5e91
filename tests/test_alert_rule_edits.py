"""Alert rules are edited through `update_alert_rule` alone: by whoever may change the category, with a reason that
the rule's history keeps beside the user; the admin's change form is that service's front."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from cases.models import Queue
from governance.models import Category
from metrics.models import AlertRule
from metrics.services.alerts import current_finding, update_alert_rule
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("cat")


@pytest.fixture
def owner(make_user: Any, category: Category) -> User:
    user: User = make_user("owner", roles=["Product Owner"], is_staff=True)
    assign_perm("governance.change_category", user, category)
    return user


def _rule(category: Category, kind: str = "override_rate") -> AlertRule:
    return AlertRule.objects.get(category=category, kind=kind)


def test_a_change_is_saved_with_its_user_and_reason_in_the_history(category: Category, owner: User) -> None:
    rule = update_alert_rule(
        rule=_rule(category), user=owner, changes={"threshold": 0.25, "action": "pause"}, reason="Too noisy at 0.3"
    )
    assert (rule.threshold, rule.action) == (0.25, "pause")
    record = rule.history.first()
    assert record is not None
    assert record.history_user == owner
    assert record.history_change_reason == "Too noisy at 0.3"
    assert record.threshold == 0.25


def test_it_refuses_a_change_without_a_reason(category: Category, owner: User) -> None:
    with pytest.raises(ValidationError) as refused:
        update_alert_rule(rule=_rule(category), user=owner, changes={"threshold": 0.25}, reason="  ")
    assert "reason" in refused.value.message_dict
    assert _rule(category).threshold == 0.30


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"threshold": 0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"window_hours": 0}, "window_hours")],
)
def test_it_refuses_a_threshold_or_window_that_cannot_work(
    category: Category, owner: User, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        update_alert_rule(rule=_rule(category), user=owner, changes=changes, reason="try")
    assert field in refused.value.message_dict
    assert _rule(category).threshold == 0.30 and _rule(category).window_hours == 24


def test_it_refuses_to_change_what_a_rule_is(category: Category, owner: User) -> None:
    with pytest.raises(ValidationError) as refused:
        update_alert_rule(rule=_rule(category), user=owner, changes={"kind": "rubber_stamping"}, reason="try")
    assert "kind" in refused.value.message_dict


def test_it_refuses_someone_who_may_not_change_the_category(make_user: Any, category: Category) -> None:
    other = make_category("other")
    elsewhere: User = make_user("elsewhere", roles=["Product Owner"], is_staff=True)
    assign_perm("governance.change_category", elsewhere, other)
    with pytest.raises(PermissionDenied):
        update_alert_rule(rule=_rule(category), user=elsewhere, changes={"threshold": 0.2}, reason="mine now")
    assert _rule(category).threshold == 0.30


def test_the_admin_form_asks_for_a_reason_and_saves_through_the_service(category: Category, owner: User) -> None:
    client = Client()
    client.force_login(owner)
    rule = _rule(category)
    url = f"/admin/metrics/alertrule/{rule.pk}/change/"
    form = {"threshold": "0.2", "window_hours": "12", "min_count": "20", "action": "notify", "active": "on"}
    without_reason = client.post(url, form)
    assert without_reason.status_code == 200 and "reason" in without_reason.context["adminform"].form.errors
    assert _rule(category).threshold == 0.30

    saved = client.post(url, {**form, "reason": "Half a day is enough"})
    assert saved.status_code == 302, saved.content
    rule.refresh_from_db()
    assert (rule.threshold, rule.window_hours) == (0.2, 12)
    record = rule.history.first()
    assert record is not None and record.history_user == owner
    assert record.history_change_reason == "Half a day is enough"
    assert client.get(f"/admin/metrics/alertrule/{rule.pk}/history/").status_code == 200


def test_the_change_list_edits_nothing_in_place(category: Category, owner: User) -> None:
    client = Client()
    client.force_login(owner)
    page = client.get("/admin/metrics/alertrule/")
    assert page.status_code == 200
    assert b'name="form-0-threshold"' not in page.content


def test_a_rule_shows_its_current_value_beside_the_threshold(category: Category, owner: User, make_user: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(reviewer, queue)
    reviewer = User.objects.get(pk=reviewer.pk)  # fresh: grants are read once per user object
    for action in ("approve", "approve", "reject"):
        case = make_case(category, confidence=0.8)
        review.decide(
            case=case, user=reviewer, action=action, **({"reason_code": "wrong_label"} if action == "reject" else {})
        )
    client = Client()
    client.force_login(owner)
    listing = client.get(reverse("admin:metrics_alertrule_changelist")).content.decode()
    assert "0.333 <span" in listing and "(n=3, under 20)" in listing  # override rate 1 of 3, fewer than the minimum
    update_alert_rule(rule=_rule(category), user=owner, changes={"min_count": 3}, reason="small category")
    page = client.get(reverse("admin:metrics_alertrule_change", args=[_rule(category).pk])).content.decode()
    assert 'alt="Over the threshold"> <strong>0.333</strong> (n=3)' in page
    # The value shown is the one the alert check fires on.
    finding = current_finding(_rule(category))
    assert finding is not None and finding.fires and round(finding.value or 0, 3) == 0.333
    assert AlertRule.objects.get(pk=_rule(category).pk).threshold == 0.3
