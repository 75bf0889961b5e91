"""Upgrading a database written before the keyed chains: its old trail is checked as it was, then re-sealed into
per-category chains under the key, with each decision bound to its event; a broken old trail is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance import append_only, events

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("governance", "0007_webhooks"), ("reviews", "0004_work_indexes"), ("cases", "0005_work_indexes")]


def old_trail(apps, *, break_at: int | None = None) -> int:
    """Events as the old release wrote them: one global unkeyed sha256 chain; returns the decision's id."""
    Category = apps.get_model("governance", "Category")
    Case = apps.get_model("cases", "Case")
    Decision = apps.get_model("reviews", "Decision")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    Head = apps.get_model("governance", "AuditChainHead")
    ModelVersion = apps.get_model("governance", "ModelVersion")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    category = Category.objects.create(slug="old", name="Old")
    mv = ModelVersion.objects.create(category=category, name="m", version="1", status="active")
    case = Case.objects.create(
        category=category,
        external_id="e1",
        input={},
        output={"label": "x"},
        confidence=0.5,
        model_version=mv,
        route="quick_review",
        route_reasons=[],
        policy_version=1,
        status="approved",
    )
    decision = Decision.objects.create(
        case=case, action="approve", output_before={"label": "x"}, model_version="m@1", policy_version=1
    )
    prev = "0" * 64
    rows = [
        ("category.created", "old", None, {}),
        ("case.routed", "old", case.pk, {}),
        ("case.decided", "old", case.pk, {"decision_id": decision.pk}),
        ("model_version.registered", "", None, {}),
    ]
    for seq, (kind, slug, case_id, payload) in enumerate(rows, start=1):
        body = {
            "seq": seq,
            "created_at": now.isoformat(),
            "kind": kind,
            "actor_id": None,
            "actor_username": "system",
            "category_slug": slug,
            "case_id": case_id,
            "payload": payload,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + text).encode()).hexdigest()
        if seq == break_at:
            digest = "e" * 64
        AuditEvent.objects.create(
            seq=seq,
            created_at=now,
            kind=kind,
            actor_username="system",
            category_slug=slug,
            case_id=case_id,
            payload=payload,
            prev_hash=prev,
            hash=digest,
        )
        prev = digest
    Head.objects.update_or_create(pk=1, defaults={"seq": len(rows), "hash": prev})
    return decision.pk


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_an_old_trail_is_checked_then_resealed_per_category_and_bound():
    old_apps = migrate(BEFORE)
    decision_id = old_trail(old_apps)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    from governance.models import AuditEvent

    result = events.verify_chain(anchors=[])
    assert result.ok, result.problem
    assert result.bound == 1
    assert list(AuditEvent.objects.filter(category_slug="old").order_by("seq").values_list("seq", flat=True)) == [
        1,
        2,
        3,
    ]
    assert AuditEvent.objects.get(payload__decision_id=decision_id).payload["decision_digest"]


def test_a_broken_old_trail_is_refused_naming_the_row():
    old_apps = migrate(BEFORE)
    old_trail(old_apps, break_at=2)
    try:
        with pytest.raises(RuntimeError, match=r"broken at seq 2"):
            migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    finally:
        # Leave the schema migrated for the tests after this one: without the broken trail, nothing to re-seal.
        with connection.cursor() as cursor:
            for statement in append_only.drop_statements(connection.vendor, "governance_auditevent"):
                cursor.execute(statement)
            cursor.execute("DELETE FROM governance_auditevent")
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
