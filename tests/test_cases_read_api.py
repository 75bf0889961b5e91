"""Reading cases, queues and the audit trail over the API: filters, pagination, and the grant boundary."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from tests.factories import grant_queue, grant_submit, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    """Two categories; a reviewer who works only cat-a's quick queue."""
    a, b = make_category("cat-a"), make_category("cat-b")
    reviewer = make_user("rev", roles=["Reviewer"])
    grant_queue(reviewer, Queue.objects.get(slug="cat-a-quick"))
    cases = {
        "a_quick": make_case(a, confidence=0.8),
        "a_full": make_case(a, confidence=0.3),
        "a_auto": make_case(a, confidence=0.99),
        "b_quick": make_case(b, confidence=0.8),
    }
    return reviewer, cases


def test_a_reviewer_lists_only_the_cases_of_their_queues(api, world):
    reviewer, cases = world
    response = api(reviewer).get("/api/v1/cases/")
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [cases["a_quick"].pk]


def test_a_case_outside_the_reviewers_queues_is_404(api, world):
    reviewer, cases = world
    client = api(reviewer)
    assert client.get(f"/api/v1/cases/{cases['a_quick'].pk}/").status_code == 200
    for name in ("a_full", "a_auto", "b_quick"):
        assert client.get(f"/api/v1/cases/{cases[name].pk}/").status_code == 404
    assert client.get("/api/v1/cases/999999/").status_code == 404


def test_without_the_grant_nothing_is_visible(api, world, make_user):
    _, cases = world
    client = api(make_user("stranger"))
    assert client.get("/api/v1/cases/").json()["results"] == []
    assert client.get(f"/api/v1/cases/{cases['a_quick'].pk}/").status_code == 404
    assert client.get("/api/v1/categories/").json() == []
    assert client.get("/api/v1/categories/cat-a/").status_code == 404
    assert client.get("/api/v1/queues/").json() == []


def test_an_integration_sees_the_cases_of_categories_it_submits_to(api, world, make_user):
    _, cases = world
    integration = make_user("svc")
    grant_submit(integration, cases["a_quick"].category)
    ids = {c["id"] for c in api(integration).get("/api/v1/cases/").json()["results"]}
    assert ids == {cases["a_quick"].pk, cases["a_full"].pk, cases["a_auto"].pk}


def test_a_superuser_and_a_model_steward_see_everything(api, world, superuser, make_user):
    steward = make_user("steward", roles=["Model Steward"])
    for user in (superuser, steward):
        assert len(api(user).get("/api/v1/cases/").json()["results"]) == 4


def test_case_detail_carries_route_reasons_and_decisions(api, world, superuser):
    _, cases = world
    data = api(superuser).get(f"/api/v1/cases/{cases['a_full'].pk}/").json()
    assert data["route"] == "full_review"
    assert data["queue"] == "cat-a-full"
    assert data["route_reasons"] and "review threshold" in data["route_reasons"][0]
    assert data["decisions"] == []
    assert data["model_version"] == "model@1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=cat-b", {"b_quick"}),
        ("route=auto", {"a_auto"}),
        ("status=queued&category=cat-a", {"a_quick", "a_full"}),
        ("queue=cat-a-full", {"a_full"}),
        ("route=quick_review&route=full_review&category=cat-a", {"a_quick", "a_full"}),
    ],
)
def test_case_list_filters(api, world, superuser, query, expected):
    _, cases = world
    ids = {c["id"] for c in api(superuser).get(f"/api/v1/cases/?{query}").json()["results"]}
    assert ids == {cases[name].pk for name in expected}


def test_case_list_created_range_filter(api, world, superuser):
    _, cases = world
    Case.objects.filter(pk=cases["b_quick"].pk).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = api(superuser).get("/api/v1/cases/", {"created_after": since})
    assert cases["b_quick"].pk not in {c["id"] for c in response.json()["results"]}
    assert len(response.json()["results"]) == 3


def test_case_list_is_cursor_paginated(api, superuser):
    category = make_category("cat")
    for _ in range(5):
        make_case(category)
    client = api(superuser)
    first = client.get("/api/v1/cases/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    seen = [c["id"] for c in first["results"]]
    page = first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]
    assert len(seen) == len(set(seen)) == 5


def test_an_invalid_filter_value_is_a_400_naming_it(api, superuser):
    response = api(superuser).get("/api/v1/cases/?status=nonsense")
    assert response.status_code == 400
    assert "status" in response.json()


def test_queues_show_depth_oldest_age_and_near_breach(api, world, superuser):
    reviewer, cases = world
    Case.objects.filter(pk=cases["a_quick"].pk).update(due_at=timezone.now() + timedelta(hours=1))
    make_case(cases["a_quick"].category, confidence=0.85)
    queues = {q["slug"]: q for q in api(reviewer).get("/api/v1/queues/").json()}
    assert set(queues) == {"cat-a-quick"}
    quick = queues["cat-a-quick"]
    assert quick["depth"] == 2
    assert quick["near_breach"] == 1  # 1 h left of a 24 h SLA
    assert quick["overdue"] == 0
    assert quick["oldest_age_seconds"] >= 0
    assert quick["sla_seconds"] == 24 * 3600
    assert api(reviewer).get("/api/v1/queues/cat-a-full/").status_code == 404
    assert api(superuser).get("/api/v1/queues/cat-a-full/").json()["depth"] == 1


def test_audit_trail_of_a_case_tells_its_routing(api, world, superuser):
    _, cases = world
    events = api(superuser).get(f"/api/v1/audit/?case={cases['a_auto'].pk}").json()["results"]
    assert [e["kind"] for e in events] == ["case.routed"]
    assert events[0]["payload"]["route"] == "auto"
    assert len(events[0]["hash"]) == 64


def test_audit_trail_is_limited_to_what_the_user_may_see(api, world):
    reviewer, cases = world
    client = api(reviewer)
    assert client.get(f"/api/v1/audit/?case={cases['b_quick'].pk}").json()["results"] == []
    visible = client.get(f"/api/v1/audit/?case={cases['a_quick'].pk}").json()["results"]
    assert len(visible) == 1
    assert client.get("/api/v1/audit/?case=abc").status_code == 400


def test_product_owner_with_category_grant_sees_its_cases_and_policy_events(api, world, make_user):
    _, cases = world
    owner = make_user("po", roles=["Product Owner"])
    assign_perm("governance.change_category", owner, cases["a_quick"].category)
    client = api(owner)
    assert len(client.get("/api/v1/cases/").json()["results"]) == 3
    kinds = {e["kind"] for e in client.get("/api/v1/audit/?category=cat-a").json()["results"]}
    assert {"category.created", "case.routed"} <= kinds
    assert client.get("/api/v1/audit/?category=cat-b").json()["results"] == []
