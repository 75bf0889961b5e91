"""Agreement in double reviews: Cohen's kappa per category, per reviewer pair and per reviewer, with n, against
values computed by hand; in the KPIs (`reviewers[].kappa`, `agreement`), the curators' admin, and the policy field
that sets how many cases are double-reviewed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm
from hypothesis import given
from hypothesis import strategies as st

from cases.models import Queue
from governance.models import Category, Policy
from reviews import services
from reviews.agreement import Agreement, agreement_from_counts, cohens_kappa
from reviews.models import DoubleReview
from tests.factories import grant_queue, make_case, make_category
from tests.test_admin import policy_form

# The pairs of the tests below: (first said, second said) -> how many times.
#                 second: a   b
#   first said a:         4   1      (5 a's)
#   first said b:         2   3      (5 b's)
#                        (6) (4)     n = 10
# Observed agreement p_o = (4 + 3) / 10 = 0.7; by chance p_e = (5 * 6 + 5 * 4) / 100 = 0.5;
# kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4: below 0.61, weak.
TABLE = {("a", "a"): 4, ("a", "b"): 1, ("b", "a"): 2, ("b", "b"): 3}
TABLE_KAPPA = 0.4


def test_kappa_matches_the_hand_computed_value() -> None:
    assert cohens_kappa(TABLE) == pytest.approx(TABLE_KAPPA)
    figure = Agreement.of(TABLE)
    assert (figure.n, figure.kappa, figure.weak) == (10, 0.4, True)


def test_kappa_of_three_labels_matches_the_hand_computed_value() -> None:
    # first\second  x  y  z   | rows: x 5, y 3, z 2; columns: x 4, y 4, z 2; n = 10
    #   x           4  1  0   | p_o = (4 + 2 + 1) / 10 = 0.7
    #   y           0  2  1   | p_e = (5*4 + 3*4 + 2*2) / 100 = 0.36
    #   z           0  1  1   | kappa = (0.7 - 0.36) / (1 - 0.36) = 0.53125: weak
    counts = {("x", "x"): 4, ("x", "y"): 1, ("y", "y"): 2, ("y", "z"): 1, ("z", "y"): 1, ("z", "z"): 1}
    assert cohens_kappa(counts) == pytest.approx(0.53125)
    assert Agreement.of(counts).weak


def test_kappa_is_one_for_perfect_agreement_and_none_when_undefined() -> None:
    assert cohens_kappa({("a", "a"): 3, ("b", "b"): 2}) == pytest.approx(1.0)
    assert cohens_kappa({}) is None
    # Everyone always said "a": chance explains it all (p_e = 1), kappa is undefined, and not called weak.
    assert cohens_kappa({("a", "a"): 7}) is None
    assert not Agreement.of({("a", "a"): 7}).weak


@given(st.dictionaries(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), st.integers(0, 50)))
def test_kappa_does_not_depend_on_who_counts_as_first(counts: dict[tuple[str, str], int]) -> None:
    swapped = {(b, a): n for (a, b), n in counts.items()}
    kappa, other = cohens_kappa(counts), cohens_kappa(swapped)
    assert (kappa is None) == (other is None)
    if kappa is not None and other is not None:
        assert kappa == pytest.approx(other)
        assert -1 - 1e-9 <= kappa <= 1 + 1e-9


def test_a_pair_is_one_pair_whichever_of_the_two_decided_first() -> None:
    rows = [
        {"first": "ann", "second": "bob", "first_said": "a", "second_said": "a", "n": 4},
        {"first": "bob", "second": "ann", "first_said": "b", "second_said": "a", "n": 1},  # ann a, bob b
        {"first": "ann", "second": "bob", "first_said": "b", "second_said": "a", "n": 2},
        {"first": "bob", "second": "ann", "first_said": "b", "second_said": "b", "n": 3},
        {"first": "ann", "second": "cy", "first_said": "a", "second_said": "b", "n": 1},
    ]
    figures = agreement_from_counts(rows)
    # Seen from ann's side, ann-bob is TABLE (ann first): kappa 0.4.
    assert list(figures.pairs) == [("ann", "bob"), ("ann", "cy")]
    assert figures.pairs["ann", "bob"] == Agreement(n=10, kappa=0.4)
    assert figures.pairs["ann", "cy"] == Agreement(n=1, kappa=0.0)
    assert (figures.overall.n, figures.reviewers["ann"].n, figures.reviewers["bob"].n) == (11, 11, 10)
    assert figures.reviewers["bob"].kappa == 0.4


# --- through the services, the KPIs and the admin ---


@pytest.fixture
def paired(make_user: Any, db: None) -> dict[str, Any]:
    """Ten double reviews of `kap` as in TABLE, ann first and bob second, and one of bob's verdicts waiting for
    its second review (bob needs a verdict of his own in the window to have a `reviewers` row)."""
    category = make_category("kap", auto_threshold=0.9, review_threshold=0.6, double_review_rate=1.0)
    quick = Queue.objects.get(slug="kap-quick")
    people = {}
    for name in ("ann", "bob", "carl"):
        user = make_user(name, roles=["Reviewer"], is_staff=True)
        grant_queue(user, quick)
        people[name] = User.objects.get(pk=user.pk)
    for (first, second), n in TABLE.items():
        for _ in range(n):
            case = make_case(category, confidence=0.8, output={"label": "a"})
            if first == "a":
                services.decide(case=case, user=people["ann"], action="approve")
            else:
                services.decide(case=case, user=people["ann"], action="correct", output={"label": first})
            task = DoubleReview.objects.get(case=case)
            services.submit_second_review(task=task, user=people["bob"], output={"label": second})
    services.decide(case=make_case(category, confidence=0.8), user=people["bob"], action="approve")
    return {"category": category, **people}


def test_the_kpis_carry_each_reviewers_kappa_and_the_categorys_agreement(paired: dict[str, Any], api: Any) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "pass-word-123")
    response = api(root).get("/api/v1/metrics/kap/?window=24h")
    assert response.status_code == 200, response.content
    body = response.json()
    rows = {row["username"]: row for row in body["reviewers"]}
    assert (rows["ann"]["kappa"], rows["bob"]["kappa"]) == (0.4, 0.4)
    assert list(rows["ann"]) == ["username", "decisions", "per_hour", "median_seconds", "approval_rate", "kappa",
                                 "rubber_stamp", "floor_seconds"]  # fmt: skip
    assert body["agreement"] == {
        "n": 10,
        "kappa": 0.4,
        "weak": True,
        "pairs": [{"reviewers": ["ann", "bob"], "n": 10, "kappa": 0.4, "weak": True}],
        "reviewers": [
            {"username": "ann", "n": 10, "kappa": 0.4, "weak": True},
            {"username": "bob", "n": 10, "kappa": 0.4, "weak": True},
        ],
    }


def test_a_reviewer_sees_only_their_own_pairs(paired: dict[str, Any], api: Any) -> None:
    mine = api(paired["ann"]).get("/api/v1/metrics/kap/?window=24h").json()["agreement"]
    assert [pair["reviewers"] for pair in mine["pairs"]] == [["ann", "bob"]]
    assert [row["username"] for row in mine["reviewers"]] == ["ann"]
    others = api(paired["carl"]).get("/api/v1/metrics/kap/?window=24h").json()["agreement"]
    assert (others["n"], others["kappa"], others["pairs"], others["reviewers"]) == (10, 0.4, [], [])


def test_a_window_without_double_reviews_has_no_kappa(make_user: Any, api: Any, db: None) -> None:
    make_category("none")
    root = User.objects.create_superuser("root", "root@example.com", "pass-word-123")
    body = api(root).get("/api/v1/metrics/none/?window=24h").json()
    assert body["agreement"] == {"n": 0, "kappa": None, "weak": False, "pairs": [], "reviewers": []}


def test_curators_see_agreement_in_the_admin_and_reviewers_do_not(paired: dict[str, Any], make_user: Any) -> None:
    curator = make_user("curator", roles=["Data Curator"], is_staff=True)
    client = Client()
    client.force_login(curator)
    response = client.get(reverse("admin:reviews_doublereview_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ann &amp; bob" in html and "0.4" in html and "weak" in html
    assert response.context["agreement"][0][0] == "kap"
    assert response.context["agreement"][0][1].overall == Agreement(n=10, kappa=0.4)
    assert DoubleReview.objects.count() == 11
    reviewer = Client()
    reviewer.force_login(paired["ann"])
    assert reviewer.get(reverse("admin:reviews_doublereview_changelist")).status_code == 403


# --- the policy field ---


@pytest.fixture
def owner(make_user: Any, db: None) -> tuple[User, Category]:
    category = make_category("pol")
    user: User = make_user("owner", roles=["Product Owner"])
    assign_perm("governance.change_category", user, category)
    return user, category


def test_the_double_review_rate_defaults_to_five_percent_and_is_a_new_policy_version(owner: Any, api: Any) -> None:
    user, category = owner
    assert Policy.objects.get(category=category).double_review_rate == 0.05
    assert api(user).get("/api/v1/categories/pol/").json()["policy"]["double_review_rate"] == 0.05
    response = api(user).patch(
        "/api/v1/categories/pol/policy/", {"double_review_rate": 0.2, "reason": "more eyes"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["version"], response.json()["double_review_rate"]) == (2, 0.2)
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.double_review_rate) == (2, 0.2)
    assert policy.history.first().history_change_reason == "more eyes"


@pytest.mark.parametrize("value", [1.5, -0.1, "lots", True, None])
def test_a_bad_double_review_rate_is_refused_naming_the_field(owner: Any, api: Any, value: Any) -> None:
    user, category = owner
    response = api(user).patch(
        "/api/v1/categories/pol/policy/", {"double_review_rate": value, "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "double_review_rate" in response.json()
    assert Policy.objects.get(category=category).version == 1


def test_the_policy_form_in_the_admin_sets_the_rate(owner: Any) -> None:
    user, category = owner
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    url = reverse("admin:governance_category_change", args=[category.pk])
    refused = client.post(url, policy_form(category.policy, reason="x", double_review_rate=2))
    assert refused.status_code == 200 and "double_review_rate" in str(refused.context["adminform"].form.errors)
    response = client.post(url, policy_form(category.policy, reason="audit the reviewers", double_review_rate=0.1))
    assert response.status_code == 302
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.double_review_rate) == (2, 0.1)
