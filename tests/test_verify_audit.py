"""The audit trail: the database refuses changes, and for each kind of tampering that gets past the database (an
owner who disables the triggers) `verify_audit` fails and names the row and how it broke."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from rq.cron import CronScheduler

from governance import append_only, events, services
from governance.jobs import verify_audit_chain
from governance.models import AuditChainHead, AuditEvent, Notification, Policy
from hitl_project.cron import JOBS
from reviews import services as review_services
from reviews.models import Decision, DoubleReview
from tests.factories import UserFactory, grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db

EVENTS = "governance_auditevent"
DECISIONS = "reviews_decision"
HEADS = append_only.HEAD_TABLE


@pytest.fixture
def chain() -> list[AuditEvent]:
    """A few real events in the chain of category `audit-demo`: the category, its model version, two routed cases."""
    category = make_category("audit-demo")
    make_case(category)
    make_case(category)
    return list(AuditEvent.objects.filter(category_slug="audit-demo").order_by("seq"))


@pytest.fixture
def decision() -> Decision:
    category = make_category("decided")
    case = make_case(category, confidence=0.8)
    reviewer = UserFactory(roles=["Reviewer"])
    grant_queue(reviewer, case.queue)
    return review_services.decide(case=case, user=reviewer, action="approve")


@contextmanager
def triggers_bypassed() -> Iterator[None]:
    """What an attacker with the database owner's rights would do first; the test puts the triggers back after."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending when tables are altered
            for table in (EVENTS, DECISIONS, HEADS):
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for statement in [
                *append_only.drop_statements(vendor, EVENTS),
                *append_only.drop_statements(vendor, DECISIONS),
                *append_only.head_drop_statements(vendor),
            ]:
                cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending when tables are altered
                for table in (EVENTS, DECISIONS, HEADS):
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            else:
                for statement in [
                    *append_only.create_statements(vendor, EVENTS),
                    *append_only.create_statements(vendor, DECISIONS),
                    *append_only.head_create_statements(vendor),
                ]:
                    cursor.execute(statement)


def execute(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def set_payload(event: AuditEvent, payload: dict[str, object]) -> None:
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    execute(f"UPDATE {EVENTS} SET payload = %s{cast} WHERE id = %s", [json.dumps(payload), event.pk])


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def broken() -> str:
    with pytest.raises(CommandError) as excinfo:
        verify()
    assert excinfo.value.returncode != 0
    return str(excinfo.value)


def test_it_reports_an_intact_trail(chain: list[AuditEvent]) -> None:
    total = AuditEvent.objects.count()
    assert verify().startswith(f"Audit trail OK: {total} events in ")


def test_every_category_has_its_own_chain_from_genesis(chain: list[AuditEvent]) -> None:
    make_case(make_category("other"))
    other = list(AuditEvent.objects.filter(category_slug="other").order_by("seq"))
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert [e.seq for e in other] == list(range(1, len(other) + 1))
    assert chain[0].prev_hash == other[0].prev_hash == events.GENESIS_HASH
    for previous, current in zip(chain, chain[1:], strict=False):
        assert current.prev_hash == previous.hash
    heads = {h.chain: (h.seq, h.hash) for h in AuditChainHead.objects.all()}
    assert heads["audit-demo"] == (chain[-1].seq, chain[-1].hash)
    assert heads["other"] == (other[-1].seq, other[-1].hash)


def test_the_hash_is_keyed_with_the_audit_key(chain: list[AuditEvent], settings) -> None:
    event = chain[0]
    assert event.hash == events.compute_hash(event.prev_hash, event)
    unkeyed = hashlib.sha256((event.prev_hash + events.canonical_json(event)).encode()).hexdigest()
    assert event.hash != unkeyed
    settings.AUDIT_KEY = "another-key-" + "x" * 40
    assert "under the audit key" in broken()


# --- each kind of tampering, with the triggers out of the way ---


def test_an_edited_event_is_named(chain: list[AuditEvent]) -> None:
    victim = chain[2]
    with triggers_bypassed():
        set_payload(victim, {**victim.payload, "reason": "nothing to see here"})
    message = broken()
    assert f"chain 'audit-demo' at seq {victim.seq} (event id {victim.pk})" in message
    assert "altered" in message


def test_an_edited_event_with_its_followers_rehashed_without_the_key_is_named(chain: list[AuditEvent]) -> None:
    """The attacker recomputes every following hash, as they could with a plain sha256 chain, but has no key."""
    victim = chain[1]
    with triggers_bypassed():
        set_payload(victim, {**victim.payload, "forged": True})
        prev = chain[0].hash
        for event in AuditEvent.objects.filter(category_slug="audit-demo", seq__gte=victim.seq).order_by("seq"):
            forged = hashlib.sha256((prev + events.canonical_json(event)).encode()).hexdigest()
            execute(f"UPDATE {EVENTS} SET prev_hash = %s, hash = %s WHERE id = %s", [prev, forged, event.pk])
            prev = forged
        execute(f"UPDATE {HEADS} SET hash = %s WHERE chain = %s", [prev, "audit-demo"])
    message = broken()
    assert f"at seq {victim.seq} (event id {victim.pk})" in message
    assert "under the audit key" in message


def test_a_deleted_row_in_the_middle_is_named(chain: list[AuditEvent]) -> None:
    with triggers_bypassed():
        execute(f"DELETE FROM {EVENTS} WHERE id = %s", [chain[1].pk])
    message = broken()
    assert f"at seq {chain[2].seq} (event id {chain[2].pk})" in message
    assert "missing" in message


def test_a_deleted_last_row_is_named_by_the_head(chain: list[AuditEvent]) -> None:
    with triggers_bypassed():
        execute(f"DELETE FROM {EVENTS} WHERE id = %s", [chain[-1].pk])
    message = broken()
    assert f"at seq {chain[-1].seq}" in message
    assert "the last rows are missing" in message


def test_a_deleted_tail_with_the_head_rewound_is_named_by_the_anchor(chain: list[AuditEvent]) -> None:
    services.anchor_audit_chains()
    tail = list(AuditEvent.objects.filter(category_slug="audit-demo").order_by("seq"))[-3:]
    keep = AuditEvent.objects.get(category_slug="audit-demo", seq=tail[0].seq - 1)
    with triggers_bypassed():
        execute(f"DELETE FROM {EVENTS} WHERE id IN (%s, %s, %s)", [e.pk for e in tail])
        execute(f"UPDATE {HEADS} SET seq = %s, hash = %s WHERE chain = %s", [keep.seq, keep.hash, "audit-demo"])
    message = broken()
    assert "chain 'audit-demo' at seq" in message
    assert "rows were deleted and the head rewound" in message


def test_everything_emptied_is_named_by_the_anchor(chain: list[AuditEvent], decision: Decision) -> None:
    """TRUNCATE of the audit log and the decisions plus a reset of the heads: row triggers would not see it."""
    services.anchor_audit_chains()
    with triggers_bypassed():
        # What points at decisions first: a double review (when the case's draw picks it) and the labels.
        for table in ("reviews_doublereview", "reviews_label", EVENTS, DECISIONS, HEADS):
            execute(f"DELETE FROM {table}")
    assert AuditEvent.objects.count() == 0
    message = broken()
    assert "it is gone: rows were deleted" in message


def test_a_rewritten_row_is_named_against_a_copy_of_the_anchors(chain: list[AuditEvent], tmp_path) -> None:
    services.anchor_audit_chains()
    anchor = next(a for a in events.read_anchors() if a["chain"] == "audit-demo")
    copy = tmp_path / "copy.jsonl"  # a copy kept elsewhere, e.g. from the stewards' notices
    copy.write_text(json.dumps(anchor) + "\n")
    with triggers_bypassed():
        execute(
            f"UPDATE {EVENTS} SET hash = %s WHERE category_slug = %s AND seq = %s",
            ["f" * 64, anchor["chain"], anchor["seq"]],
        )
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", "--anchors", str(copy), stdout=StringIO())
    assert f"at seq {anchor['seq']}" in str(excinfo.value)


def test_an_altered_decision_is_named(decision: Decision) -> None:
    assert verify().startswith("Audit trail OK")
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with triggers_bypassed():
        execute(f"UPDATE {DECISIONS} SET output_after = %s{cast} WHERE id = %s", ['{"label": "forged"}', decision.pk])
    message = broken()
    event = AuditEvent.objects.get(payload__decision_id=decision.pk)
    assert f"at seq {event.seq} (event id {event.pk})" in message
    assert f"decision {decision.pk} no longer matches" in message


@pytest.mark.parametrize(("column", "value"), [("notes", "all fine"), ("actor_id", None)])
def test_a_decision_with_other_notes_or_actor_is_named(decision: Decision, column: str, value: object) -> None:
    with triggers_bypassed():
        execute(f"UPDATE {DECISIONS} SET {column} = %s WHERE id = %s", [value, decision.pk])
    assert f"decision {decision.pk} no longer matches" in broken()


def test_a_decision_added_behind_the_trails_back_is_named(decision: Decision) -> None:
    forged = Decision.objects.create(
        case=decision.case,
        action="reject",
        reason_code="other",
        output_before={},
        model_version="m@1",
        policy_version=1,
    )
    assert f"decision {forged.pk} has no audit event" in broken()


@pytest.fixture
def double_reviewed_decision() -> Decision:
    """A decision whose case is drawn for a second review, always (the draw hashes the case's external id, so at
    the default rate whether it is drawn depends on how many cases the run made before)."""
    category = make_category("decided-twice")
    Policy.objects.filter(category=category).update(double_review_rate=1.0)
    case = make_case(category, confidence=0.8)
    reviewer = UserFactory(roles=["Reviewer"])
    grant_queue(reviewer, case.queue)
    decision = review_services.decide(case=case, user=reviewer, action="approve")
    assert DoubleReview.objects.filter(first_decision=decision).exists()
    return decision


def test_a_deleted_decision_is_named(double_reviewed_decision: Decision) -> None:
    decision = double_reviewed_decision
    with triggers_bypassed():
        # The rows derived from it first, which point at it: its second review, then its label.
        execute("DELETE FROM reviews_doublereview WHERE first_decision_id = %s", [decision.pk])
        execute("DELETE FROM reviews_label WHERE decision_id = %s", [decision.pk])
        execute(f"DELETE FROM {DECISIONS} WHERE id = %s", [decision.pk])
    assert f"decision {decision.pk} recorded here is gone" in broken()


# --- what the database itself refuses ---


@pytest.mark.parametrize(
    "statement",
    [f"UPDATE {EVENTS} SET actor_username = 'mallory' WHERE id = %s", f"DELETE FROM {EVENTS} WHERE id = %s"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_an_event(chain: list[AuditEvent], statement: str) -> None:
    victim = chain[0]
    # The savepoint keeps the surrounding test transaction usable after the refusal (PostgreSQL needs that).
    with pytest.raises(DatabaseError), transaction.atomic():
        execute(statement, [victim.pk])
    unchanged = AuditEvent.objects.get(pk=victim.pk)
    assert (unchanged.actor_username, unchanged.hash) == (victim.actor_username, victim.hash)
    assert verify().startswith("Audit trail OK")


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {HEADS} SET seq = seq - 1 WHERE chain = 'audit-demo'",
        f"UPDATE {HEADS} SET hash = 'x' WHERE chain = 'audit-demo'",
        f"DELETE FROM {HEADS}",
    ],
    ids=["rewind", "rehash", "delete"],
)
def test_the_database_lets_a_head_move_only_forward(chain: list[AuditEvent], statement: str) -> None:
    before = AuditChainHead.objects.get(chain="audit-demo")
    with pytest.raises(DatabaseError), transaction.atomic():
        execute(statement)
    after = AuditChainHead.objects.get(chain="audit-demo")
    assert (after.seq, after.hash) == (before.seq, before.hash)


@pytest.mark.postgres
@pytest.mark.parametrize("table", [EVENTS, DECISIONS, HEADS])
def test_postgresql_refuses_truncate(chain: list[AuditEvent], table: str) -> None:
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
        execute(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.filter(category_slug="audit-demo").count() == len(chain)


# --- anchors ---


def test_the_anchor_goes_to_the_log_the_file_the_stewards_and_the_chain(chain: list[AuditEvent], caplog) -> None:
    steward = UserFactory(roles=["Model Steward"])
    head = AuditChainHead.objects.get(chain="audit-demo")
    with caplog.at_level("INFO", logger="hitl.audit"):
        result = services.anchor_audit_chains()
    assert "audit-demo" in result["chains"]
    assert {"chain": "audit-demo", "seq": head.seq, "hash": head.hash}.items() <= next(
        a for a in events.read_anchors() if a["chain"] == "audit-demo"
    ).items()
    assert f"seq={head.seq} hash={head.hash}" in caplog.text
    assert head.hash in Notification.objects.get(user=steward, kind="audit.anchor").body
    anchor_event = AuditEvent.objects.get(category_slug="audit-demo", kind="audit.anchor")
    assert anchor_event.payload == {"anchored_seq": head.seq, "anchored_hash": head.hash}
    # Nothing moved since: a second run anchors nothing twice.
    assert services.anchor_audit_chains()["anchored"] == 0
    assert len(events.read_anchors()) == result["anchored"]
    assert verify().startswith("Audit trail OK")


# --- the job and runjob ---


def test_the_job_summarises_the_trail(chain: list[AuditEvent]) -> None:
    total = AuditEvent.objects.count()
    assert verify_audit_chain() == {"ok": True, "checked": total, "first_bad": None}
    with triggers_bypassed():
        set_payload(chain[1], {"forged": True})
    summary = verify_audit_chain()
    assert summary["ok"] is False
    assert summary["first_bad"] == {
        "chain": "audit-demo",
        "seq": chain[1].seq,
        "id": chain[1].pk,
        "message": "hash does not match the row's content under the audit key: it was altered",
    }


def test_runjob_runs_verify_audit(chain: list[AuditEvent]) -> None:
    out = StringIO()
    call_command("runjob", "verify_audit", stdout=out)
    assert f'"checked": {AuditEvent.objects.count()}' in out.getvalue()
    assert "Job 'verify_audit' done." in out.getvalue()


def test_runjob_fails_when_the_job_finds_a_broken_chain(chain: list[AuditEvent]) -> None:
    with triggers_bypassed():
        set_payload(chain[0], {"forged": True})
    with pytest.raises(CommandError, match="reported a problem"):
        call_command("runjob", "verify_audit", stdout=StringIO())


def test_runjob_rejects_an_unknown_job_and_lists_the_known_ones() -> None:
    with pytest.raises(CommandError, match=r"Unknown job 'nope'\. Known jobs: .*verify_audit"):
        call_command("runjob", "nope")


def test_every_job_runjob_knows_is_on_the_cron_schedule() -> None:
    scheduler = CronScheduler(connection=None)  # type: ignore[arg-type]  # loading a config needs no Redis
    scheduler.load_config_from_file("hitl_project.cron")
    scheduled = {job.name: job for job in scheduler.get_jobs()}
    assert set(scheduled) == set(JOBS)
    assert scheduled["verify_audit"].func_name == "governance.jobs.verify_audit_chain"
    assert scheduled["verify_audit"].interval == 3600
    assert scheduled["audit_anchor"].func_name == "governance.jobs.audit_anchor"
