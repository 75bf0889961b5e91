"""POST /api/v1/cases/: routing through the API, idempotency, permissions and validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cases.models import Case
from governance.models import AuditEvent, ModelVersion
from tests.factories import grant_submit, make_category

URL = "/api/v1/cases/"


def body(category: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": category,
        "external_id": "ticket-1",
        "input": {"text": "My parcel never arrived"},
        "output": {"label": "shipping", "text": "Sorry! We are resending it.", "reasoning": "mentions parcel"},
        "confidence": 0.99,
        "model_version": "model@1",
    }
    data.update(overrides)
    return data


@pytest.fixture
def integration(make_user):
    return make_user("integration")


@pytest.fixture
def submit(api, integration):
    client = api(integration)

    def _submit(category, **overrides):
        grant_submit(integration, category)
        return client.post(URL, body(category.slug, **overrides), format="json")

    return _submit


# --- one test per routing rule, in DESIGN.md's order ---


@pytest.mark.django_db
def test_rule1_shadow_category_routes_shadow_to_full_queue(submit):
    category = make_category("shadowed", stage="shadow")
    response = submit(category)
    assert response.status_code == 201
    assert response.json()["route"] == "shadow"
    assert response.json()["queue"] == "shadowed-full"
    assert response.json()["status"] == "queued"


@pytest.mark.django_db
def test_rule1_shadow_model_version_routes_shadow(submit):
    category = make_category("cat", model="m@2", model_status="shadow")
    response = submit(category, model_version="m@2")
    assert response.json()["route"] == "shadow"


@pytest.mark.django_db
def test_rule2_unregistered_model_version_is_registered_and_goes_to_full_review(submit):
    category = make_category("cat")
    response = submit(category, model_version="brand-new@7")
    assert response.status_code == 201
    assert response.json()["route"] == "full_review"
    assert response.json()["queue"] == "cat-full"
    assert "registered" in response.json()["route_reasons"][0]
    version = ModelVersion.objects.get(category=category, name="brand-new", version="7")
    assert version.status == "registered"


@pytest.mark.django_db
def test_rule2_retired_model_version_goes_to_full_review(submit):
    category = make_category("cat", model="m@1", model_status="retired")
    assert submit(category, model_version="m@1").json()["route"] == "full_review"


@pytest.mark.django_db
def test_rule3_sensitive_rule_forces_full_review(submit):
    category = make_category("cat", sensitive_rules=["mentions_lawyer"])
    response = submit(category, rules_fired=["mentions_lawyer", "other"])
    assert response.json()["route"] == "full_review"
    assert "mentions_lawyer" in response.json()["route_reasons"][0]


@pytest.mark.django_db
def test_rule3_sensitive_label_forces_full_review(submit):
    category = make_category("cat", sensitive_labels=["legal"])
    response = submit(category, output={"label": "legal"})
    assert response.json()["route"] == "full_review"


@pytest.mark.django_db
def test_rule4_high_value_forces_full_review(submit):
    category = make_category("cat", high_value_amount="500.00")
    assert submit(category, external_id="a", value=500).json()["route"] == "full_review"
    assert submit(category, external_id="b", value="499.99").json()["route"] == "auto"


@pytest.mark.django_db
def test_rule5_below_review_threshold_goes_to_full_review(submit):
    category = make_category("cat")
    response = submit(category, confidence=0.69)
    assert response.json()["route"] == "full_review"
    assert "review threshold" in response.json()["route_reasons"][0]


@pytest.mark.django_db
def test_rule6_paused_category_routes_confident_case_to_quick_review(submit):
    from governance.services import pause_category

    category = make_category("cat")
    pause_category(category=category, user=None, reason="too many rejections")
    response = submit(category, confidence=0.999)
    assert response.json()["route"] == "quick_review"
    assert "paused" in response.json()["route_reasons"][0]


@pytest.mark.django_db
def test_rule7_below_auto_threshold_goes_to_quick_review(submit):
    category = make_category("cat")
    response = submit(category, confidence=0.80)
    body_ = response.json()
    assert body_["route"] == "quick_review"
    assert body_["queue"] == "cat-quick"
    assert body_["due_at"] is not None


@pytest.mark.django_db
def test_rule8_validator_pattern_never_acts_alone(submit):
    category = make_category("cat", pattern="validator")
    assert submit(category, confidence=0.999).json()["route"] == "quick_review"


@pytest.mark.django_db
def test_rule9_outside_the_ramp_goes_to_quick_review(submit):
    category = make_category("cat", auto_share=0)
    response = submit(category, confidence=0.999)
    assert response.json()["route"] == "quick_review"
    assert "ramp" in response.json()["route_reasons"][0]


@pytest.mark.django_db
def test_rule10_confident_case_acts_on_its_own(submit):
    category = make_category("cat")
    response = submit(category, confidence=0.99)
    data = response.json()
    assert response.status_code == 201
    assert data["route"] == "auto"
    assert data["status"] == "auto_approved"
    assert data["queue"] is None
    assert data["final_output"] == body("cat")["output"]
    assert data["policy_version"] == 1
    assert isinstance(data["audit_sampled"], bool)


@pytest.mark.django_db
def test_audit_rate_one_samples_every_auto_case(submit):
    category = make_category("cat", audit_rate=1.0)
    response = submit(category, confidence=0.99)
    assert response.json()["audit_sampled"] is True
    assert any("audit" in reason for reason in response.json()["route_reasons"])


# --- idempotency ---


@pytest.mark.django_db
def test_repeat_of_category_and_external_id_returns_existing_case_with_200(submit):
    category = make_category("cat")
    first = submit(category)
    events_after_first = AuditEvent.objects.count()
    second = submit(category, confidence=0.1, output={"label": "other"})
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["route"] == "auto"
    assert Case.objects.count() == 1
    assert AuditEvent.objects.count() == events_after_first


@pytest.mark.django_db
def test_same_external_id_in_another_category_is_a_new_case(submit):
    a, b = make_category("a"), make_category("b")
    assert submit(a).status_code == 201
    assert submit(b).status_code == 201
    assert Case.objects.count() == 2


# --- permissions ---


@pytest.mark.django_db
def test_it_refuses_a_submission_without_submit_case(api, make_user):
    category = make_category("cat")
    response = api(make_user("nobody")).post(URL, body("cat"), format="json")
    assert response.status_code == 403
    assert "submit_case" in response.json()["detail"]
    assert Case.objects.count() == 0
    assert not category.cases.exists()


@pytest.mark.django_db
def test_unknown_and_ungranted_categories_answer_alike(api, make_user):
    make_category("cat")
    client = api(make_user("nobody"))
    ungranted = client.post(URL, body("cat"), format="json")
    unknown = client.post(URL, body("no-such-category"), format="json")
    assert ungranted.status_code == unknown.status_code == 403
    assert ungranted.json()["detail"].replace("'cat'", "X") == unknown.json()["detail"].replace(
        "'no-such-category'", "X"
    )
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_anonymous_submissions(api):
    make_category("cat")
    response = api(None).post(URL, body("cat"), format="json")
    assert response.status_code == 401
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_submit_case_through_a_group_grant_works(api, make_user):
    from django.contrib.auth.models import Group

    category = make_category("cat")
    group = Group.objects.create(name="integrations")
    user = make_user("svc")
    user.groups.add(group)
    grant_submit(group, category)
    assert api(user).post(URL, body("cat"), format="json").status_code == 201


# --- validation: each bad input is a 400 naming the field, and nothing is written ---

BAD_INPUTS = [
    ("missing category", {"category": None}, "category"),
    ("missing external_id", {"external_id": None}, "external_id"),
    ("blank external_id", {"external_id": "  "}, "external_id"),
    ("input not an object", {"input": ["a", "list"]}, "input"),
    ("input a string", {"input": "text"}, "input"),
    ("output not an object", {"output": "shipping"}, "output"),
    ("output without label", {"output": {"text": "hello"}}, "output"),
    ("output with empty label", {"output": {"label": ""}}, "output"),
    ("confidence above 1", {"confidence": 1.5}, "confidence"),
    ("confidence below 0", {"confidence": -0.1}, "confidence"),
    ("confidence a string", {"confidence": "0.9"}, "confidence"),
    ("confidence a boolean", {"confidence": True}, "confidence"),
    ("confidence missing", {"confidence": None}, "confidence"),
    ("model_version without @", {"model_version": "model-1"}, "model_version"),
    ("negative value", {"value": -5}, "value"),
    ("rules_fired not a list", {"rules_fired": "rule"}, "rules_fired"),
    ("segment not an object", {"segment": "EU"}, "segment"),
    ("unknown priority", {"priority": "asap"}, "priority"),
]


@pytest.fixture
def granted_client(api, integration):
    """The integration's client, allowed to submit to category `cat`."""
    grant_submit(integration, make_category("cat"))
    return api(integration)


def assert_nothing_written(events_before: int, versions_before: int) -> None:
    assert Case.objects.count() == 0
    assert AuditEvent.objects.count() == events_before
    assert ModelVersion.objects.count() == versions_before


@pytest.mark.django_db
@pytest.mark.parametrize(("case_name", "change", "field"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(granted_client, case_name, change, field):
    events_before, versions_before = AuditEvent.objects.count(), ModelVersion.objects.count()
    data = body("cat", model_version="unseen@1")
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    response = granted_client.post(URL, data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert_nothing_written(events_before, versions_before)


@pytest.mark.django_db
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_confidence_is_refused(granted_client, literal):
    events_before, versions_before = AuditEvent.objects.count(), ModelVersion.objects.count()
    raw = json.dumps(body("cat")).replace('"confidence": 0.99', f'"confidence": {literal}')
    response = granted_client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json() or "confidence" in response.json()
    assert_nothing_written(events_before, versions_before)


@pytest.mark.django_db
def test_body_that_is_not_json_is_refused(granted_client):
    response = granted_client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_body_over_256_kib_is_refused_with_413(granted_client):
    events_before, versions_before = AuditEvent.objects.count(), ModelVersion.objects.count()
    data = body("cat", input={"text": "x" * (256 * 1024)})
    response = granted_client.post(URL, data, format="json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert_nothing_written(events_before, versions_before)


@pytest.mark.django_db
def test_body_just_under_the_limit_is_accepted(granted_client):
    data = body("cat", input={"text": "x" * (250 * 1024)})
    assert granted_client.post(URL, data, format="json").status_code == 201
