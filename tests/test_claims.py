"""A claim is held while `claimed_until > now`: one rule (`Case.holder_id_at`, `Case.objects.held/unheld`), read
alike by the SLA sweep, the services, the admin and the API. An expired claim holds nothing anywhere, even before
anyone clears it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.models import Case, Queue
from cases.services.sla import sweep
from governance.exceptions import Conflict
from reviews import services
from reviews.services.claims import held_by_in
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_user: Any) -> tuple[Queue, User, User]:
    make_category("cat")
    quick = Queue.objects.get(slug="cat-quick")
    first = make_user("first", roles=["Reviewer"], is_staff=True)
    second = make_user("second", roles=["Reviewer"], is_staff=True)
    for user in (first, second):
        grant_queue(user, quick)
    return quick, first, second


def _expired_claim(queue: Queue, holder: User) -> Case:
    """A case `holder` claimed, whose claim has run out but was never cleared."""
    case = make_case(queue.category, confidence=0.8)
    services.claim(case=case, user=holder)
    Case.objects.filter(pk=case.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    case.refresh_from_db()
    assert case.claimed_by_id == holder.pk  # still recorded, no longer held
    return case


def test_held_and_unheld_split_cases_at_now(setup: tuple[Queue, User, User]) -> None:
    queue, first, _ = setup
    now = timezone.now()
    held = make_case(queue.category, confidence=0.8)
    services.claim(case=held, user=first)
    expired = _expired_claim(queue, first)
    free = make_case(queue.category, confidence=0.8)
    assert set(Case.objects.held(now).values_list("pk", flat=True)) == {held.pk}
    assert set(Case.objects.unheld(now).values_list("pk", flat=True)) == {expired.pk, free.pk}
    held.refresh_from_db()
    assert held.holder_id_at(now) == first.pk
    assert expired.holder_id_at(now) is None and free.holder_id_at(now) is None
    assert held.holder_id_at(held.claimed_until) is None  # at the instant it runs out, it is free


def test_an_expired_claim_is_free_to_claim_and_to_claim_next(setup: tuple[Queue, User, User]) -> None:
    queue, first, second = setup
    case = _expired_claim(queue, first)
    assert services.claim_next(user=second, queue=queue) == case
    case.refresh_from_db()
    assert case.claimed_by == second


def test_an_expired_claim_cannot_be_released_by_its_old_holder(setup: tuple[Queue, User, User]) -> None:
    queue, first, _ = setup
    case = _expired_claim(queue, first)
    with pytest.raises(Conflict, match="not claimed by you"):
        services.release(case=case, user=first)


def test_another_reviewer_may_decide_a_case_whose_claim_expired(setup: tuple[Queue, User, User]) -> None:
    queue, first, second = setup
    case = _expired_claim(queue, first)
    services.decide(case=case, user=second, action="approve")
    case.refresh_from_db()
    assert case.status == "approved"


def test_the_sweep_moves_an_overdue_case_whose_claim_expired_but_not_one_still_held(
    setup: tuple[Queue, User, User],
) -> None:
    queue, first, second = setup
    expired = _expired_claim(queue, first)
    held = make_case(queue.category, confidence=0.8)
    with time_machine.travel(timezone.now() + queue.sla + timedelta(minutes=1), tick=False):
        services.claim(case=held, user=second)  # a fresh claim, taken once both are overdue
        result = sweep()
    expired.refresh_from_db()
    held.refresh_from_db()
    assert result.moved == 1
    assert expired.queue.kind == "escalation"
    assert held.queue == queue and held.claimed_by == second


def test_the_admin_review_page_shows_an_expired_claim_as_free(setup: tuple[Queue, User, User]) -> None:
    queue, first, second = setup
    case = _expired_claim(queue, first)
    client = Client()
    client.force_login(second)
    page = client.get(f"/admin/reviews/work/case/{case.pk}/")
    assert page.status_code == 200
    assert page.context["state"].holder == ""
    assert page.context["state"].can_act is True
    work_list = client.get(f"/admin/reviews/work/queue/{queue.slug}/")
    row = next(row for row in work_list.context["rows"] if row.case.pk == case.pk)
    assert row.holder == ""


def test_the_api_lets_another_reviewer_claim_a_case_whose_claim_expired(
    setup: tuple[Queue, User, User], api: Any
) -> None:
    queue, first, second = setup
    case = _expired_claim(queue, first)
    response = api(second).post(f"/api/v1/cases/{case.pk}/claim/")
    assert response.status_code == 200, response.content
    assert response.json()["claimed_by"] == "second"
    # ... while a claim still held is refused to anyone else.
    assert api(first).post(f"/api/v1/cases/{case.pk}/claim/").status_code == 409


def test_claim_next_takes_the_case_in_one_statement_and_writes_its_history(
    setup: tuple[Queue, User, User],
) -> None:
    queue, alice, _ = setup
    urgent = make_case(queue.category, confidence=0.8, priority="urgent")
    make_case(queue.category, confidence=0.8)
    with CaptureQueriesContext(connection) as captured:
        case = services.claim_next(user=User.objects.get(pk=alice.pk), queue=queue)
    assert case is not None and case.pk == urgent.pk
    statements = [q["sql"] for q in captured.captured_queries]
    writes = [sql for sql in statements if sql.startswith('UPDATE "cases_case"')]
    # Found, locked and claimed at once: no SELECT ... FOR UPDATE of a candidate, then a second read and a save.
    assert len(writes) == 1 and "RETURNING" in writes[0] and "LIMIT 1" in writes[0]
    assert not [sql for sql in statements if sql.startswith('SELECT "cases_case"') and "FOR UPDATE" in sql]
    case.refresh_from_db()
    assert (case.claimed_by_id, case.status) == (alice.pk, "claimed")
    assert case.claimed_until is not None and case.claimed_until > timezone.now() + timedelta(minutes=14)
    record = case.history.first()
    assert (record.history_user_id, record.history_change_reason) == (alice.pk, "Claimed (next in queue)")
    assert (record.claimed_by_id, record.status) == (alice.pk, "claimed")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's query plan")
def test_claim_next_finds_the_reviewers_own_cases_by_holder_not_by_walking_the_queue(
    setup: tuple[Queue, User, User],
) -> None:
    queue, alice, _ = setup
    for _ in range(30):
        make_case(queue.category, confidence=0.8)
    services.claim_next(user=User.objects.get(pk=alice.pk), queue=queue)
    own = held_by_in(queue, alice, timezone.now()).values_list("pk", flat=True)[:1]
    sql, params = own.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cases_case")
        cursor.execute("SET LOCAL enable_seqscan = off")  # so the plan shows the index a large table would use
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # The holder's claimed cases (cases_case_held): a probe, however long the queue's backlog.
    assert "cases_case_held" in plan and "claimed_by_id =" in plan.split("cases_case_held", 1)[1], plan
