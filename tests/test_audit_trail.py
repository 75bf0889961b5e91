"""Who did what and why: simple-history on business models and the hash-chained audit events."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from cases.models import Case, Queue
from governance import events
from governance.models import AuditEvent, Category, ModelVersion, Policy
from governance.services import pause_category, update_policy
from reviews.models import Decision
from tests.factories import grant_submit, make_case, make_category

pytestmark = pytest.mark.django_db


def test_a_case_submitted_over_the_api_has_history_with_the_user_and_reason(api, make_user):
    user = make_user("integration")
    grant_submit(user, make_category("cat"))
    body = {
        "category": "cat",
        "external_id": "x",
        "input": {},
        "output": {"label": "a"},
        "confidence": 0.5,
        "model_version": "model@1",
    }
    case_id = api(user).post("/api/v1/cases/", body, format="json").json()["id"]
    record = Case.objects.get(pk=case_id).history.get()
    assert record.history_user == user
    assert record.history_change_reason == "Submitted and routed"
    assert record.route == "full_review"


def test_changes_made_outside_requests_name_the_system_and_a_reason():
    category = make_category("cat")
    update_policy(category=category, user=None, changes={"audit_rate": 0.1}, reason="nightly tuning job")
    record = Policy.objects.get(category=category).history.first()
    assert record.history_user is None
    assert record.history_change_reason == "nightly tuning job"
    event = AuditEvent.objects.filter(kind="policy.changed").get()
    assert event.actor_username == "system"


def test_every_business_model_keeps_history():
    make_category("cat")
    make_case(Category.objects.get(slug="cat"))
    for model in (Category, Policy, Queue, ModelVersion, Case):
        assert model.history.exists(), model.__name__  # type: ignore[attr-defined]


def test_routing_records_an_event_with_route_reasons_and_versions():
    category = make_category("cat")
    case = make_case(category, confidence=0.8)
    event = AuditEvent.objects.get(kind="case.routed", case_id=case.pk)
    assert event.category_slug == "cat"
    assert event.payload["route"] == "quick_review"
    assert event.payload["reasons"] == case.route_reasons
    assert event.payload["policy_version"] == 1
    assert event.payload["model_version"] == "model@1"


def test_the_chain_links_each_event_to_the_previous_one_and_verifies():
    category = make_category("cat")
    for confidence in (0.1, 0.8, 0.99):
        make_case(category, confidence=confidence)
    pause_category(category=category, user=None, reason="test")
    rows = list(AuditEvent.objects.filter(category_slug="cat").order_by("seq"))
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == events.GENESIS_HASH
    for previous, current in zip(rows, rows[1:], strict=False):
        assert current.prev_hash == previous.hash
    result = events.verify_chain()
    assert result.ok, result.problem
    assert result.checked == AuditEvent.objects.count()


def test_the_database_refuses_to_update_or_delete_audit_events():
    event = events.record("case.routed", payload={"route": "auto"})
    for sql in (
        "UPDATE governance_auditevent SET payload = '{}' WHERE id = %s",
        "DELETE FROM governance_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).payload == {"route": "auto"}


def test_the_orm_refuses_to_change_an_audit_event():
    event = events.record("case.routed", payload={})
    event.kind = "category.paused"
    with pytest.raises(Exception, match="append-only"):
        event.save()
    with pytest.raises(Exception, match="append-only"):
        event.delete()


def test_the_database_refuses_to_update_or_delete_decisions():
    case = make_case(make_category("cat"), confidence=0.8)
    decision = Decision.objects.create(
        case=case, action="approve", output_before=case.output, model_version="model@1", policy_version=1
    )
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE reviews_decision SET action = 'reject' WHERE id = %s", [decision.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM reviews_decision WHERE id = %s", [decision.pk])
    assert Decision.objects.get(pk=decision.pk).action == "approve"


def test_a_long_reason_is_kept_whole_in_the_audit_event_and_shortened_in_history(api, make_user):
    from guardian.shortcuts import assign_perm

    category = make_category("cat")
    owner = make_user("po")
    assign_perm("governance.change_category", owner, category)
    reason = "r" * 500
    response = api(owner).post("/api/v1/categories/cat/pause/", {"reason": reason}, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.get(kind="category.paused").payload["reason"] == reason
    assert len(category.history.first().history_change_reason) == 100


def test_events_recorded_together_store_exactly_what_was_hashed_and_verify():
    # record_many writes a batch in one statement (on PostgreSQL, as one JSON document): every value must come back
    # as the hash saw it, whatever the payload holds.
    from datetime import UTC, datetime
    from decimal import Decimal

    payloads = [
        {"text": 'quote " backslash \\ tab \t newline \n', "accents": "é ß 漢字 🙂", "empty": ""},
        {"number": 0.30000000000000004, "big": 2**62, "negative": -1.5e-7, "flag": True, "nothing": None},
        {
            "nested": {"b": [1, {"c": "d"}], "a": []},
            "decimal": Decimal("12.50"),
            "at": datetime(2026, 1, 2, tzinfo=UTC),
        },
        {},
    ]
    specs = [
        events.EventSpec(kind="case.routed", category_slug=slug, case_id=index, payload=payload)
        for index, payload in enumerate(payloads)
        for slug in ("cat-a", "")
    ]
    recorded = events.record_many(specs)
    assert all(event.pk is not None for event in recorded)
    for event in recorded:
        stored = AuditEvent.objects.get(pk=event.pk)
        assert (stored.category_slug, stored.seq, stored.case_id) == (event.category_slug, event.seq, event.case_id)
        assert stored.payload == event.payload == events.normalise_payload(specs[recorded.index(event)].payload)
        assert stored.created_at == event.created_at
        assert stored.hash == event.hash == events.compute_hash(stored.prev_hash, stored)
    assert events.verify_chain(anchors=[]).ok
