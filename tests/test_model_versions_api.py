"""Model versions over the API: register, promote along the rollout, and who may do it."""

from __future__ import annotations

import pytest

from governance.models import AuditEvent, ModelVersion
from tests.factories import make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def steward(make_user):
    return make_user("steward", roles=["Model Steward"])


def test_a_steward_registers_a_version_as_registered_by_default(api, steward):
    make_category("cat", model=None)
    response = api(steward).post(
        "/api/v1/model-versions/", {"name": "triage", "version": "2", "category": "cat", "reason": "new"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "registered"
    assert response.json()["label"] == "triage@2"
    assert AuditEvent.objects.filter(kind="model_version.registered").count() == 1


def test_registering_the_same_version_twice_is_a_conflict(api, steward):
    make_category("cat", model="triage@2", model_status="registered")
    response = api(steward).post(
        "/api/v1/model-versions/", {"name": "triage", "version": "2", "category": "cat"}, format="json"
    )
    assert response.status_code == 409
    assert ModelVersion.objects.filter(name="triage").count() == 1


def test_a_version_registered_active_routes_confident_cases_to_auto(api, steward):
    category = make_category("cat", model=None)
    api(steward).post(
        "/api/v1/model-versions/",
        {"name": "m", "version": "1", "category": "cat", "status": "active", "reason": "eval passed"},
        format="json",
    )
    assert make_case(category, model_version="m@1", confidence=0.99).route == "auto"


def test_promote_walks_the_rollout_and_retires_the_previous_active_version(api, steward):
    category = make_category("cat", model="m@1", model_status="active")
    new = ModelVersion.objects.create(category=category, name="m", version="2")
    client = api(steward)
    for status in ("shadow", "canary", "active"):
        response = client.post(
            f"/api/v1/model-versions/{new.pk}/promote/", {"status": status, "reason": f"to {status}"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
    assert ModelVersion.objects.get(name="m", version="1").status == "retired"
    new.refresh_from_db()
    assert new.approved_by == steward
    assert new.history.first().history_change_reason == "to active"


def test_rollback_is_promoting_the_old_version_back(api, steward):
    category = make_category("cat", model="m@1", model_status="active")
    new = ModelVersion.objects.create(category=category, name="m", version="2")
    old = ModelVersion.objects.get(name="m", version="1")
    client = api(steward)
    client.post(f"/api/v1/model-versions/{new.pk}/promote/", {"status": "active", "reason": "ship"}, format="json")
    response = client.post(
        f"/api/v1/model-versions/{old.pk}/promote/", {"status": "active", "reason": "rollback"}, format="json"
    )
    assert response.status_code == 200
    new.refresh_from_db()
    assert new.status == "retired"


def test_promote_needs_a_reason_and_a_forward_step(api, steward):
    category = make_category("cat", model="m@1", model_status="canary")
    version = ModelVersion.objects.get(category=category)
    client = api(steward)
    assert (
        client.post(f"/api/v1/model-versions/{version.pk}/promote/", {"status": "active"}, format="json").status_code
        == 400
    )
    response = client.post(
        f"/api/v1/model-versions/{version.pk}/promote/", {"status": "shadow", "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "status" in response.json()
    version.refresh_from_db()
    assert version.status == "canary"


def test_a_reviewer_may_not_register_or_promote(api, make_user):
    category = make_category("cat", model="m@1", model_status="registered")
    version = ModelVersion.objects.get(category=category)
    from guardian.shortcuts import assign_perm

    reviewer = make_user("rev", roles=["Reviewer"])
    assign_perm("governance.view_category", reviewer, category)
    client = api(reviewer)
    assert (
        client.post(
            "/api/v1/model-versions/", {"name": "x", "version": "1", "category": "cat"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/model-versions/{version.pk}/promote/", {"status": "active", "reason": "r"}, format="json"
        ).status_code
        == 403
    )
    version.refresh_from_db()
    assert version.status == "registered"


def test_an_unknown_category_is_a_400_naming_it(api, steward):
    response = api(steward).post(
        "/api/v1/model-versions/", {"name": "x", "version": "1", "category": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "category" in response.json()
