"""The threshold advisor: per candidate auto threshold, what would act and how often it would be wrong, from the
cases whose right answer people gave; "too little data" where fewer than 30 are known; and one step from a row
to a new policy version, with a reason, for whoever may change the category."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from guardian.shortcuts import assign_perm

from cases.models import Queue
from governance.models import Category
from metrics import kpis
from metrics.services.advisor import adopt_threshold
from metrics.stats import wilson_interval
from reviews import services
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category(make_user: Any) -> Category:
    """40 cases at 0.85 (36 approved, 4 corrected) and 10 at 0.65 (all corrected), none acting on its own."""
    category = make_category("adv", auto_threshold=0.95, review_threshold=0.6, audit_rate=0.0)
    rev = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="adv-quick"))
    for index in range(40):
        case = make_case(category, confidence=0.85)
        if index < 36:
            services.decide(case=case, user=rev, action="approve", seconds_spent=60)
        else:
            services.decide(case=case, user=rev, action="correct", output={"label": "x"}, seconds_spent=60)
    for _ in range(10):
        case = make_case(category, confidence=0.65)
        services.decide(case=case, user=rev, action="correct", output={"label": "x"}, seconds_spent=60)
    return category


def _row(category: Category, threshold: float) -> dict[str, Any]:
    rows = kpis.category_kpis(category, kpis.Window.last("24h"))["threshold_advisor"]
    return next(row for row in rows if row["threshold"] == threshold)


def test_each_row_says_what_would_act_and_how_often_it_would_be_wrong(category: Category) -> None:
    at_80 = _row(category, 0.80)
    _, upper = wilson_interval(4, 40)
    assert at_80 == {
        "threshold": 0.80,
        "would_act_share": 40 / 50,
        "known": 40,
        "enough_data": True,
        "error_rate": 4 / 40,
        "error_rate_upper": round(upper, 4),
        # 10 cases a day below it, a minute each.
        "review_hours_per_day": round(10 * 60 / 3600, 2),
    }
    at_60 = _row(category, 0.60)
    assert (at_60["would_act_share"], at_60["known"], at_60["error_rate"]) == (1.0, 50, 14 / 50)


def test_above_the_data_it_says_too_little_instead_of_guessing(category: Category) -> None:
    at_90 = _row(category, 0.90)
    assert at_90["known"] == 0 and at_90["enough_data"] is False
    assert at_90["error_rate"] is None and at_90["error_rate_upper"] is None
    assert at_90["would_act_share"] == 0.0


@pytest.fixture
def owner(make_user: Any, category: Category) -> User:
    user: User = make_user("owner", roles=["Product Owner"])
    assign_perm("governance.change_category", user, category)
    return User.objects.get(pk=user.pk)


def test_a_row_becomes_a_new_policy_version_with_its_reason(category: Category, owner: User) -> None:
    before = category.policy.version
    policy = adopt_threshold(
        category=category, user=owner, threshold=0.80, window=kpis.Window.last("24h"), reason="Monthly review"
    )
    assert (policy.auto_threshold, policy.version) == (0.80, before + 1)
    record = policy.history.first()
    assert record is not None and record.history_user == owner
    assert record.history_change_reason.startswith("Monthly review [advisor over 24h: acts on 80%")


@pytest.mark.parametrize(
    ("threshold", "reason", "field"),
    [
        (0.90, "try", "threshold"),  # too few known outcomes above it
        (0.805, "try", "threshold"),  # not a candidate
        (0.80, " ", "reason"),
        (0.50, "try", "review_threshold"),  # below the review threshold: the policy itself refuses it
    ],
)
def test_it_refuses_a_thin_row_an_odd_threshold_or_no_reason(
    category: Category, owner: User, threshold: float, reason: str, field: str
) -> None:
    window = kpis.Window.last("24h")
    with pytest.raises(ValidationError) as refused:
        adopt_threshold(category=category, user=owner, threshold=threshold, window=window, reason=reason)
    assert field in refused.value.message_dict
    assert Category.objects.get(pk=category.pk).policy.auto_threshold == 0.95


def test_it_refuses_someone_who_may_not_change_the_category(category: Category, make_user: Any) -> None:
    reviewer: User = make_user("someone", roles=["Reviewer"])
    with pytest.raises(PermissionDenied):
        adopt_threshold(category=category, user=reviewer, threshold=0.80, window=kpis.Window.last("24h"), reason="x")
    assert Category.objects.get(pk=category.pk).policy.version == 1
