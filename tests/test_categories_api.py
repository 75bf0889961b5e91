"""Categories over the API: create with policy and default queues, policy versions with reasons, pause/resume."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from governance.models import AuditEvent, Category, Policy
from tests.factories import make_category

pytestmark = pytest.mark.django_db

NEW_CATEGORY = {
    "slug": "refund-requests",
    "name": "Refund requests",
    "pattern": "validator",
    "stage": "live",
    "consequence": "high",
    "policy": {
        "auto_threshold": 0.95,
        "review_threshold": 0.7,
        "high_value_amount": "500.00",
        "sensitive_labels": ["legal"],
    },
}


@pytest.fixture
def product_owner(make_user):
    return make_user("po", roles=["Product Owner"])


def test_a_product_owner_creates_a_category_with_policy_version_1_and_five_queues(api, product_owner):
    response = api(product_owner).post("/api/v1/categories/", NEW_CATEGORY, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["policy"]["version"] == 1
    assert data["policy"]["auto_threshold"] == 0.95
    assert data["policy"]["sensitive_labels"] == ["legal"]
    assert sorted(data["queues"]) == sorted(
        f"refund-requests-{k}" for k in ("quick", "full", "escalation", "expert", "audit")
    )
    category = Category.objects.get(slug="refund-requests")
    queues = {q.kind: q for q in category.queues.all()}
    assert queues["quick"].allow_batch and not queues["full"].allow_batch
    assert queues["quick"].next_queue == queues["escalation"] == queues["full"].next_queue
    assert queues["quick"].sla.total_seconds() == 24 * 3600
    assert queues["full"].sla.total_seconds() == 4 * 3600
    assert queues["escalation"].sla.total_seconds() == 3600
    assert queues["expert"].sla.total_seconds() == 8 * 3600
    assert queues["audit"].sla.total_seconds() == 72 * 3600
    assert AuditEvent.objects.filter(kind="category.created", category_slug="refund-requests").exists()
    # The creator can see and change what they made.
    assert api(product_owner).get("/api/v1/categories/refund-requests/").status_code == 200


def test_create_default_queues_false_creates_none(api, product_owner):
    response = api(product_owner).post(
        "/api/v1/categories/", {**NEW_CATEGORY, "create_default_queues": False}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["queues"] == []


def test_a_reviewer_may_not_create_categories(api, make_user):
    response = api(make_user("r", roles=["Reviewer"])).post("/api/v1/categories/", NEW_CATEGORY, format="json")
    assert response.status_code == 403
    assert not Category.objects.exists()


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"auto_threshold": 0.6, "review_threshold": 0.7}, "review_threshold"),
        ({"auto_threshold": 1.2}, "auto_threshold"),
        ({"audit_rate": 2}, "audit_rate"),
        ({"auto_share": 101}, "auto_share"),
        ({"audit_multipliers": {"moon_phase": 2}}, "audit_multipliers"),
    ],
)
def test_a_category_with_an_invalid_policy_is_refused_and_nothing_is_written(api, product_owner, policy, field):
    response = api(product_owner).post("/api/v1/categories/", {**NEW_CATEGORY, "policy": policy}, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not Category.objects.exists()


def test_a_duplicate_slug_is_refused(api, product_owner):
    make_category("refund-requests")
    response = api(product_owner).post("/api/v1/categories/", NEW_CATEGORY, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()


def test_policy_patch_creates_a_new_version_with_its_reason(api, product_owner):
    category = make_category("cat")
    assign_perm("governance.change_category", product_owner, category)
    response = api(product_owner).patch(
        "/api/v1/categories/cat/policy/", {"auto_threshold": 0.97, "reason": "too many errors"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["category"] == "cat"
    assert response.json()["version"] == 2
    assert response.json()["auto_threshold"] == 0.97
    assert api(product_owner).get("/api/v1/categories/cat/").json()["policy"]["version"] == 2
    assert api(product_owner).get("/api/v1/categories/cat/policy/").json()["version"] == 2
    policy = Policy.objects.get(category=category)
    latest = policy.history.first()
    assert latest.history_change_reason == "too many errors"
    assert latest.history_user == product_owner
    assert latest.version == 2
    event = AuditEvent.objects.get(kind="policy.changed")
    assert event.payload["changes"] == {"auto_threshold": [0.95, 0.97]}
    assert event.actor_username == "po"


def test_policy_patch_without_a_reason_is_refused(api, product_owner):
    category = make_category("cat")
    assign_perm("governance.change_category", product_owner, category)
    response = api(product_owner).patch("/api/v1/categories/cat/policy/", {"auto_threshold": 0.97}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    assert Policy.objects.get(category=category).version == 1


def test_policy_patch_that_breaks_the_threshold_order_is_refused(api, product_owner):
    category = make_category("cat")
    assign_perm("governance.change_category", product_owner, category)
    response = api(product_owner).patch(
        "/api/v1/categories/cat/policy/", {"review_threshold": 0.99, "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "review_threshold" in response.json()
    assert Policy.objects.get(category=category).review_threshold == 0.70


def test_new_policy_version_applies_to_new_cases_only(api, product_owner):
    from tests.factories import make_case

    category = make_category("cat")
    assign_perm("governance.change_category", product_owner, category)
    before = make_case(category, confidence=0.96)
    api(product_owner).patch("/api/v1/categories/cat/policy/", {"auto_threshold": 0.97, "reason": "r"}, format="json")
    after = make_case(category, confidence=0.96)
    before.refresh_from_db()
    assert (before.route, before.policy_version) == ("auto", 1)
    assert (after.route, after.policy_version) == ("quick_review", 2)


def test_policy_patch_without_change_category_is_403_and_invisible_category_is_404(api, make_user):
    category = make_category("cat")
    make_category("hidden")
    viewer = make_user("viewer")
    assign_perm("governance.view_category", viewer, category)
    client = api(viewer)
    assert (
        client.patch("/api/v1/categories/cat/policy/", {"auto_share": 50, "reason": "r"}, format="json").status_code
        == 403
    )
    assert (
        client.patch("/api/v1/categories/hidden/policy/", {"auto_share": 50, "reason": "r"}, format="json").status_code
        == 404
    )
    assert client.get("/api/v1/categories/hidden/").status_code == 404
    assert [c["slug"] for c in client.get("/api/v1/categories/").json()] == ["cat"]


def test_pause_and_resume_with_reasons(api, product_owner):
    category = make_category("cat")
    assign_perm("governance.change_category", product_owner, category)
    client = api(product_owner)
    assert client.post("/api/v1/categories/cat/pause/", {}, format="json").status_code == 400
    response = client.post("/api/v1/categories/cat/pause/", {"reason": "rejections spiking"}, format="json")
    assert response.status_code == 200
    assert response.json()["paused"] is True
    assert response.json()["paused_reason"] == "rejections spiking"
    assert client.post("/api/v1/categories/cat/pause/", {"reason": "again"}, format="json").status_code == 409
    response = client.post("/api/v1/categories/cat/resume/", {"reason": "fixed the prompt"}, format="json")
    assert response.status_code == 200
    assert response.json()["paused"] is False
    assert response.json()["resumed_at"] is not None
    assert client.post("/api/v1/categories/cat/resume/", {"reason": "again"}, format="json").status_code == 409
    kinds = list(AuditEvent.objects.filter(category_slug="cat").values_list("kind", flat=True))
    assert kinds[-2:] == ["category.paused", "category.resumed"]
    history = category.history.order_by("history_date")
    assert [h.history_change_reason for h in history][-2:] == [
        "Paused: rejections spiking",
        "Resumed: fixed the prompt",
    ]


def test_pause_without_change_category_is_refused(api, make_user):
    category = make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"])
    assign_perm("governance.view_category", reviewer, category)
    response = api(reviewer).post("/api/v1/categories/cat/pause/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    category.refresh_from_db()
    assert category.paused is False
