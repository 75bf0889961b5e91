"""The audit chain: the database refuses changes, verify_audit names the first bad row, runjob runs the check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from rq.cron import CronScheduler

from governance import append_only
from governance.jobs import verify_audit_chain
from governance.models import AuditEvent
from hitl_project.cron import JOBS
from tests.factories import make_case, make_category

pytestmark = pytest.mark.django_db

TABLE = "governance_auditevent"


@pytest.fixture
def chain() -> list[AuditEvent]:
    """A few real events: a category, its model version and two routed cases."""
    category = make_category("audit-demo")
    make_case(category)
    make_case(category)
    return list(AuditEvent.objects.order_by("seq"))


@contextmanager
def append_only_trigger_bypassed() -> Iterator[None]:
    """What an attacker with database access would have to do first; the test puts the trigger back after."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TABLE}_append_only")
        else:
            for statement in append_only.drop_statements(connection.vendor, TABLE):
                cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TABLE}_append_only")
            else:
                for statement in append_only.create_statements(connection.vendor, TABLE):
                    cursor.execute(statement)


def set_payload(event: AuditEvent, payload: dict[str, object]) -> None:
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET payload = %s{cast} WHERE id = %s", [json.dumps(payload), event.pk])


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def test_it_reports_an_intact_chain(chain: list[AuditEvent]) -> None:
    assert verify().strip() == f"Audit chain OK: {len(chain)} events"


def test_it_names_the_first_altered_row(chain: list[AuditEvent]) -> None:
    victim = chain[2]
    with append_only_trigger_bypassed():
        set_payload(victim, {**victim.payload, "reason": "nothing to see here"})
    with pytest.raises(CommandError) as excinfo:
        verify()
    message = str(excinfo.value)
    assert f"seq {victim.seq} (id {victim.pk})" in message
    assert "altered" in message
    assert excinfo.value.returncode != 0


def test_it_names_the_row_after_a_deleted_one(chain: list[AuditEvent]) -> None:
    with append_only_trigger_bypassed(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[1].pk])
    with pytest.raises(CommandError, match=rf"seq {chain[2].seq} \(id {chain[2].pk}\).*missing"):
        verify()


def test_it_notices_a_missing_last_row(chain: list[AuditEvent]) -> None:
    with append_only_trigger_bypassed(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[-1].pk])
    with pytest.raises(CommandError, match=rf"seq {chain[-1].seq} \(id none\).*missing"):
        verify()


@pytest.mark.parametrize(
    "statement",
    [f"UPDATE {TABLE} SET actor_username = 'mallory' WHERE id = %s", f"DELETE FROM {TABLE} WHERE id = %s"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_an_event(chain: list[AuditEvent], statement: str) -> None:
    victim = chain[0]
    # The savepoint keeps the surrounding test transaction usable after the refusal (PostgreSQL needs that).
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [victim.pk])
    unchanged = AuditEvent.objects.get(pk=victim.pk)
    assert (unchanged.actor_username, unchanged.hash) == (victim.actor_username, victim.hash)
    assert verify().startswith("Audit chain OK")


def test_the_job_summarises_the_chain(chain: list[AuditEvent]) -> None:
    assert verify_audit_chain() == {"ok": True, "checked": len(chain), "first_bad": None}
    with append_only_trigger_bypassed():
        set_payload(chain[1], {"forged": True})
    assert verify_audit_chain() == {
        "ok": False,
        "checked": 1,
        "first_bad": {
            "seq": chain[1].seq,
            "id": chain[1].pk,
            "message": "hash does not match the row's content: it was altered",
        },
    }


def test_runjob_runs_verify_audit(chain: list[AuditEvent]) -> None:
    out = StringIO()
    call_command("runjob", "verify_audit", stdout=out)
    assert f'"checked": {len(chain)}' in out.getvalue()
    assert "Job 'verify_audit' done." in out.getvalue()


def test_runjob_fails_when_the_job_finds_a_broken_chain(chain: list[AuditEvent]) -> None:
    with append_only_trigger_bypassed():
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
