"""Intake on a lean path: what one submission reads and writes, while every guarantee holds.

Statement shapes are counted with Django's CaptureQueriesContext on a single POST /api/v1/cases/ and a bulk of
20, after a warm-up request (the token, the content types and the chain head exist)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case
from governance.models import AuditEvent
from tests.factories import grant_submit, make_category

pytestmark = pytest.mark.django_db


def body(category: str, external_id: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": category,
        "external_id": external_id,
        "input": {"text": "My parcel never arrived"},
        "output": {"label": "shipping"},
        "confidence": 0.99,
        "model_version": "model@1",
        "segment": {"channel": "email"},
    }
    data.update(overrides)
    return data


@pytest.fixture
def client(api, make_user):
    integration = make_user("integration")
    category = make_category("cat")
    grant_submit(integration, category)
    client = api(integration)
    assert client.post("/api/v1/cases/", body("cat", "warm-up"), format="json").status_code == 201
    return client


def statements_of(client, path: str, data: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, data, format="json")
    sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    return response, sql


def reads_of(sql: list[str], table: str) -> list[str]:
    return [s for s in sql if re.match(rf'^SELECT .* FROM "{table}"', s)]


def test_a_single_intake_reads_the_category_and_its_model_versions_once(client):
    response, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-1"))
    assert response.status_code == 201, response.content
    assert len(reads_of(sql, "governance_category")) == 1
    assert len(reads_of(sql, "governance_modelversion")) == 1
    assert len(reads_of(sql, "cases_queue")) == 1


def test_the_submit_grant_is_read_with_the_category_not_apart(client):
    response, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-grant"))
    assert response.status_code == 201, response.content
    assert not [s for s in sql if s.startswith(('SELECT "guardian_', '(SELECT "guardian_'))]
    (category_read,) = reads_of(sql, "governance_category")
    assert "guardian_userobjectpermission" in category_read and "guardian_groupobjectpermission" in category_read


@pytest.mark.parametrize("through_group", [False, True])
def test_a_grant_read_with_the_category_opens_it_to_the_user_or_their_group(api, make_user, through_group):
    category = make_category("granted")
    make_category("other")
    user = make_user("integration")
    if through_group:
        group = Group.objects.create(name="integrations")
        user.groups.add(group)
        grant_submit(group, category)
    else:
        grant_submit(user, category)
    client = api(user)
    assert client.post("/api/v1/cases/", body("granted", "g-1"), format="json").status_code == 201
    refused = client.post("/api/v1/cases/", body("other", "g-2"), format="json")
    assert refused.status_code == 403, refused.content
    assert list(Case.objects.values_list("external_id", flat=True)) == ["g-1"]


def test_a_single_intake_writes_its_created_history_row_in_the_same_statement_as_a_bulk(client):
    response, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-history"))
    assert response.status_code == 201, response.content
    assert len([s for s in sql if s.startswith('INSERT INTO "cases_historicalcase"')]) == 1
    (record,) = Case.objects.get(external_id="t-history").history.all()
    assert record.history_type == "+"
    assert record.history_change_reason == "Submitted and routed"
    assert record.history_user.username == "integration"


def test_a_single_intake_inserts_first_instead_of_looking_for_a_repeat(client):
    response, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-2"))
    assert response.status_code == 201
    assert not [s for s in reads_of(sql, "cases_case") if "external_id" in s.split("WHERE", 1)[-1]]


def test_the_segment_check_probes_each_key_instead_of_listing_the_segments_cases(client):
    _, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-3"))
    segment_reads = [s for s in sql if "segment_key" in s and s.startswith("SELECT") and "INSERT" not in s]
    assert segment_reads, "the new-segment check ran"
    assert all("DISTINCT" not in s and "EXISTS" in s for s in segment_reads)


def test_the_response_needs_no_permission_lookup_when_the_input_holds_nothing_to_redact(client):
    _, sql = statements_of(client, "/api/v1/cases/", body("cat", "t-4"))
    # Django's ModelBackend loads a user's permissions in two such statements (their own, their groups').
    assert not [s for s in sql if s.startswith('SELECT "django_content_type"."app_label"')]


def test_the_raw_input_is_still_redacted_for_a_client_without_view_pii(client):
    response, _ = statements_of(client, "/api/v1/cases/", body("cat", "t-5", input={"text": "mail me at a@b.example"}))
    assert response.status_code == 201
    assert "a@b.example" not in response.json()["input"]["text"]
    assert Case.objects.get(external_id="t-5").input["text"] == "mail me at a@b.example"


def test_a_repeat_still_answers_200_with_the_first_case_and_writes_nothing(client):
    first = client.post("/api/v1/cases/", body("cat", "t-6"), format="json")
    events = AuditEvent.objects.count()
    cases = Case.objects.count()
    repeat = client.post("/api/v1/cases/", body("cat", "t-6", confidence=0.1), format="json")
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.json()["id"] == first.json()["id"] and repeat.json()["confidence"] == 0.99
    assert (Case.objects.count(), AuditEvent.objects.count()) == (cases, events)
    assert Case.history.filter(external_id="t-6").count() == 1


def test_a_repeat_naming_a_new_model_version_registers_nothing(client):
    from governance.models import ModelVersion

    client.post("/api/v1/cases/", body("cat", "t-7"), format="json")
    versions = ModelVersion.objects.count()
    repeat = client.post("/api/v1/cases/", body("cat", "t-7", model_version="other@9"), format="json")
    assert repeat.status_code == 200
    assert ModelVersion.objects.count() == versions


def test_a_bulk_answers_created_rows_without_reading_their_decisions(client):
    items = [body("cat", f"b-{n}") for n in range(20)]
    response, sql = statements_of(client, "/api/v1/cases/bulk/", {"cases": items})
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 20
    assert all(result["case"]["decisions"] == [] for result in response.json()["results"])
    assert not reads_of(sql, "reviews_decision")
