"""The SLA sweep: warnings at 80 %, overdue cases moved on once, breaches recorded once, with time moved."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from cases.models import Case, Queue, SlaBreach
from cases.services.sla import sweep
from governance import events
from governance.models import AuditEvent, Notification
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category():
    return make_category("cat")


@pytest.fixture
def people(make_user, category):
    reviewer = make_user("rev", roles=["Reviewer"], email="rev@example.com")
    grant_queue(reviewer, Queue.objects.get(slug="cat-quick"))
    boss = make_user("boss", roles=["Escalation Manager"], email="boss@example.com")
    grant_queue(boss, Queue.objects.get(slug="cat-escalation"))
    return reviewer, boss


def test_an_overdue_case_moves_to_the_next_queue_once_with_urgent_priority(
    category, people, mailoutbox, django_capture_on_commit_callbacks
):
    case = make_case(category, confidence=0.8)
    assert case.queue.slug == "cat-quick"
    later = case.due_at + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            first = sweep()
        case.refresh_from_db()
        assert (first.moved, first.breached) == (1, 1)
        assert case.queue.slug == "cat-escalation"
        assert case.priority == "urgent"
        assert case.status == "escalated"
        assert case.due_at == timezone.now() + timedelta(hours=1)
        breach = SlaBreach.objects.get()
        assert (breach.queue.slug, breach.moved_to.slug) == ("cat-quick", "cat-escalation")
        event = AuditEvent.objects.get(kind="case.sla_breached")
        assert event.case_id == case.pk and event.payload["moved_to"] == "cat-escalation"
        record = case.history.first()
        assert record.history_user.username == "system"
        assert record.history_change_reason.startswith("SLA sweep")

        second = sweep()
        assert (second.moved, second.breached, second.warned) == (0, 0, 0)
        assert SlaBreach.objects.count() == 1
    _, boss = people
    notice = Notification.objects.get(user=boss, kind="sla.breach")
    assert "cat-quick" in notice.subject
    assert any("boss@example.com" in m.to for m in mailoutbox)


def test_a_warning_goes_out_once_at_80_percent_of_the_sla(category, people):
    reviewer, _ = people
    case = make_case(category, confidence=0.8)  # quick queue: 24 h SLA
    with time_machine.travel(case.created_at + timedelta(hours=19), tick=False):
        assert sweep().warned == 0
    with time_machine.travel(case.created_at + timedelta(hours=19, minutes=13), tick=False):
        assert sweep().warned == 1
        assert sweep().warned == 0
    case.refresh_from_db()
    assert case.sla_warned_at is not None
    assert Notification.objects.filter(user=reviewer, kind="sla.warning").count() == 1


def test_an_overdue_case_with_nowhere_to_go_records_its_breach_once(category, people):
    reviewer, boss = people
    case = make_case(category, confidence=0.8)
    review.decide(case=case, user=reviewer, action="escalate", reason_code="high_risk")
    case.refresh_from_db()
    with time_machine.travel(case.due_at + timedelta(minutes=1), tick=False):
        assert sweep().breached == 1
        assert sweep().breached == 0
    case.refresh_from_db()
    assert case.queue.slug == "cat-escalation"
    assert SlaBreach.objects.get().moved_to is None


def test_a_case_someone_is_working_is_left_to_them_until_the_claim_expires(category, people):
    reviewer, _ = people
    case = make_case(category, confidence=0.8)
    with time_machine.travel(case.due_at - timedelta(minutes=5), tick=False):
        review.claim(case=case, user=reviewer)
    with time_machine.travel(case.due_at + timedelta(minutes=1), tick=False):
        assert sweep().moved == 0
    with time_machine.travel(case.due_at + timedelta(minutes=11), tick=False):
        assert sweep().moved == 1
    case.refresh_from_db()
    assert (case.queue.slug, case.claimed_by, case.status) == ("cat-escalation", None, "escalated")


def test_the_sweep_runs_by_hand_with_runjob(category, capsys):
    case = make_case(category, confidence=0.8)
    with time_machine.travel(case.due_at + timedelta(minutes=1), tick=False):
        call_command("runjob", "sla_sweep")
    assert Case.objects.get(pk=case.pk).queue.slug == "cat-escalation"
    assert "moved" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sweeping_at_once_move_each_case_once():
    from tests.test_concurrency import race

    category = make_category("cat")
    cases = [make_case(category, confidence=0.8) for _ in range(30)]
    due = max(c.due_at for c in cases)
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        results = race(2, lambda i: sweep().moved)
    assert sum(results) == 30
    assert SlaBreach.objects.count() == 30
    assert AuditEvent.objects.filter(kind="case.sla_breached").count() == 30
    assert set(Case.objects.values_list("queue__slug", flat=True)) == {"cat-escalation"}
    assert events.verify_chain().ok


def test_every_moved_case_shows_its_breach_in_its_own_audit_trail_and_history(category, people, api):
    cases = [make_case(category, confidence=0.8) for _ in range(3)]
    with time_machine.travel(cases[-1].due_at + timedelta(minutes=5), tick=False):
        assert sweep().moved == 3
        swept_at = timezone.now()
    _, boss = people
    client = api(boss)
    for case in cases:
        response = client.get(f"/api/v1/audit/?case={case.pk}")
        assert response.status_code == 200, response.content
        kinds = [event["kind"] for event in response.json()["results"]]
        assert "case.sla_breached" in kinds
        case.refresh_from_db()
        record = case.history.first()
        # The set-wise history row is the case as moved: every tracked field, the sweep's user, date and reason.
        assert (record.queue_id, record.priority, record.status, record.due_at) == (
            case.queue_id,
            "urgent",
            "escalated",
            case.due_at,
        )
        assert (record.input, record.output, record.external_id) == (case.input, case.output, case.external_id)
        assert record.history_type == "~" and record.history_date == swept_at
        assert record.history_user.username == "system"
    assert Case.history.filter(history_change_reason__startswith="SLA sweep").count() == 3


def test_someone_who_works_several_queues_gets_one_notice_per_sweep(category, people, make_user):
    lead = make_user("lead", roles=["Escalation Manager"], email="lead@example.com")
    for slug in ("cat-quick", "cat-full", "cat-escalation"):
        grant_queue(lead, Queue.objects.get(slug=slug))
    quick = make_case(category, confidence=0.8)
    full = make_case(category, confidence=0.5)
    assert (quick.queue.slug, full.queue.slug) == ("cat-quick", "cat-full")
    with time_machine.travel(max(quick.due_at, full.due_at) + timedelta(minutes=1), tick=False):
        result = sweep()
    assert result.moved == 2
    notices = Notification.objects.filter(user=lead)
    assert notices.count() == 1
    notice = notices.get()
    assert notice.kind == "sla.breach"
    assert "cat-quick" in notice.body and "cat-full" in notice.body
    # The escalation manager of the fixture works only the escalation queue: one notice too, about both moves.
    _, boss = people
    assert Notification.objects.filter(user=boss).count() == 1


def test_an_idle_sweep_reads_no_grants_and_a_fixed_number_of_statements(
    category, people, django_assert_max_num_queries
):
    make_category("other")
    make_case(category, confidence=0.8)
    queues = Queue.objects.count()
    # The queues, one warning UPDATE per queue, the overdue selection: nothing per case, no grant lookups.
    with django_assert_max_num_queries(queues + 4):
        result = sweep()
    assert (result.warned, result.moved, result.breached) == (0, 0, 0)
    assert not Notification.objects.exists()


def _write_statements(queries: list[dict[str, str]]) -> dict[str, int]:
    """The sweep's writes of moved cases, counted by what they write."""
    counts = {"moves": 0, "breaches": 0, "history": 0, "events": 0}
    for query in queries:
        sql = query["sql"].split(" WHERE ")[0]
        if sql.startswith('UPDATE "cases_case" SET') and '"queue_id" =' in sql:
            counts["moves"] += 1
        elif sql.startswith('INSERT INTO "cases_slabreach"'):
            counts["breaches"] += 1
        elif sql.startswith('INSERT INTO "cases_historicalcase"'):
            counts["history"] += 1
        elif sql.startswith('INSERT INTO "governance_auditevent"'):
            counts["events"] += 1
    return counts


@pytest.mark.parametrize("per_queue", [1, 6])
def test_overdue_cases_of_every_queue_move_in_one_statement_whatever_their_number(category, people, per_queue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cases = [make_case(category, confidence=confidence) for confidence in (0.8, 0.5) for _ in range(per_queue)]
    assert {case.queue.slug for case in cases} == {"cat-quick", "cat-full"}
    late = max(case.due_at for case in cases) + timedelta(minutes=1)
    with time_machine.travel(late, tick=False), CaptureQueriesContext(connection) as captured:
        result = sweep()
    assert result.moved == result.breached == 2 * per_queue
    # Two source queues, one UPDATE for both; the breaches, history rows and audit events in one statement each.
    assert _write_statements(captured.captured_queries) == {"moves": 1, "breaches": 1, "history": 1, "events": 1}
    assert SlaBreach.objects.count() == Case.history.filter(history_change_reason__startswith="SLA sweep").count()
    for case in cases:
        case.refresh_from_db()
        breach = SlaBreach.objects.get(case=case)
        assert (breach.moved_to, breach.detected_at) == (case.queue, late)
        assert case.queue.slug == "cat-escalation" and case.status == "escalated"
    assert events.verify_chain(anchors=[]).ok


def test_an_overdue_audit_moves_on_and_keeps_its_final_status(category, people):
    # The open cases and the audits of a queue move in the same UPDATE: only an open case takes the target's status.
    audit, escalation = Queue.objects.get(slug="cat-audit"), Queue.objects.get(slug="cat-escalation")
    Queue.objects.filter(pk=audit.pk).update(next_queue=escalation)
    audited, waiting = make_case(category, confidence=0.8), make_case(category, confidence=0.8)
    Case.objects.filter(pk__in=[audited.pk, waiting.pk]).update(queue=audit)
    Case.objects.filter(pk=audited.pk).update(status="auto_approved", audit_status="pending")
    with time_machine.travel(max(audited.due_at, waiting.due_at) + timedelta(minutes=1), tick=False):
        assert sweep().moved == 2
    audited.refresh_from_db()
    waiting.refresh_from_db()
    assert (audited.status, audited.audit_status, audited.queue) == ("auto_approved", "pending", escalation)
    assert (waiting.status, waiting.queue) == ("escalated", escalation)
    assert set(SlaBreach.objects.values_list("queue", "moved_to")) == {(audit.pk, escalation.pk)}


def test_ids_named_by_ininds_select_the_same_rows_as_pk_in(category):
    from django.db.models import F

    from governance.lookups import InIds

    cases = [make_case(category, confidence=0.8) for _ in range(4)]
    wanted = [cases[0].pk, cases[2].pk, cases[3].pk]
    assert set(Case.objects.filter(InIds(F("pk"), wanted)).values_list("pk", flat=True)) == set(wanted)
    assert not Case.objects.filter(InIds(F("pk"), [])).exists()


@pytest.mark.postgres
def test_ids_named_by_ininds_are_one_array_parameter_on_postgresql(category):
    from django.db.models import F

    from governance.lookups import InIds

    case = make_case(category, confidence=0.8)
    sql, params = Case.objects.filter(InIds(F("pk"), [case.pk, case.pk + 1000])).values("pk").query.sql_with_params()
    assert "= ANY(%s::bigint[])" in sql
    assert params == ([case.pk, case.pk + 1000],)
