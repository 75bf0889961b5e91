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
