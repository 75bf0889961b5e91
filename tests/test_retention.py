"""The retention purge: raw inputs past their category's retention become their redacted form, once, and only that.

Time is moved with time-machine: cases are created on one day and the purge runs on later ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from cases.models import Case, Queue
from cases.services.retention import purge_expired_inputs
from governance.choices import AuditKind
from governance.events import verify_chain
from governance.history import SYSTEM_USERNAME
from governance.models import AuditEvent, Category
from hitl_project.cron import JOBS
from reviews import services
from reviews.models import Decision
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
RAW = {"name": "Ann Lee", "text": "Card 4111 1111 1111 1111, call +49 30 1234567, order ORD-258309"}
REDACTED = {"name": "[redacted]", "text": "Card [card], call [phone], order ORD-258309"}


@pytest.fixture
def category() -> Category:
    category = make_category("refunds")
    Category.objects.filter(pk=category.pk).update(pii_fields=["name"], retention_days=30)
    return Category.objects.get(pk=category.pk)


def case_on(day: datetime, category: Category, **fields: Any) -> Case:
    with time_machine.travel(day, tick=False):
        return make_case(category, **{"input": RAW, "confidence": 0.8, **fields})


def purge_on(day: datetime) -> dict[str, Any]:
    with time_machine.travel(day, tick=False):
        return purge_expired_inputs()


def fresh(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


def test_an_input_is_kept_until_its_retention_has_passed_then_redacted(category: Category) -> None:
    case = case_on(CREATED, category)

    before = purge_on(CREATED + timedelta(days=29, hours=23))
    assert before["purged"] == 0 and fresh(case).input == RAW

    after = purge_on(CREATED + timedelta(days=30, minutes=1))
    assert after["purged"] == 1
    assert after["categories"]["refunds"]["purged"] == 1
    assert fresh(case).input == REDACTED


def test_each_category_keeps_inputs_for_its_own_retention(category: Category) -> None:
    long_kept = make_category("support")  # the default: 365 days
    short_case, long_case = case_on(CREATED, category), case_on(CREATED, long_kept)

    purge_on(CREATED + timedelta(days=60))

    assert fresh(short_case).input == REDACTED
    assert fresh(long_case).input == RAW


def test_a_second_run_purges_nothing_and_writes_nothing(category: Category) -> None:
    cases = [case_on(CREATED, category) for _ in range(3)]
    later = CREATED + timedelta(days=31)
    assert purge_on(later)["purged"] == 3
    events, versions = AuditEvent.objects.count(), Case.history.count()  # type: ignore[attr-defined]

    again = purge_on(later + timedelta(hours=1))

    assert again["purged"] == 0
    assert AuditEvent.objects.count() == events
    assert Case.history.count() == versions  # type: ignore[attr-defined]
    assert [fresh(case).input for case in cases] == [REDACTED] * 3


def test_an_input_without_personal_data_is_left_as_it_is(category: Category) -> None:
    plain = case_on(CREATED, category, input={"text": "Where is order ORD-258309 of 2026-01-02?"})

    assert purge_on(CREATED + timedelta(days=31))["purged"] == 0
    assert fresh(plain).input == {"text": "Where is order ORD-258309 of 2026-01-02?"}


def test_batches_cover_every_expired_case(category: Category) -> None:
    cases = [case_on(CREATED, category) for _ in range(5)]

    with time_machine.travel(CREATED + timedelta(days=31), tick=False):
        result = purge_expired_inputs(batch_size=2)

    assert result["purged"] == 5
    assert all(fresh(case).input == REDACTED for case in cases)


def reviewer_of(category: Category, make_user: Any) -> User:
    user: User = make_user("rev", roles=["Reviewer"])
    grant_queue(user, Queue.objects.get(category=category, kind="quick"))
    return user


def test_decisions_outputs_and_the_audit_chain_survive_a_purge(category: Category, make_user: Any) -> None:
    reviewer = reviewer_of(category, make_user)
    case = case_on(CREATED, category, output={"label": "refund", "text": "Refund on its way"})
    with time_machine.travel(CREATED + timedelta(hours=1), tick=False):
        services.decide(case=case, user=reviewer, action="correct", output={"label": "no-refund"}, notes="fraud")
    decided = fresh(case)
    decisions = list(Decision.objects.filter(case=case).values())

    purge_on(CREATED + timedelta(days=31))

    purged = fresh(case)
    assert purged.input == REDACTED
    assert (purged.output, purged.final_output, purged.status) == (
        decided.output,
        decided.final_output,
        decided.status,
    )
    assert list(Decision.objects.filter(case=case).values()) == decisions
    result = verify_chain()
    assert result.ok and result.checked == AuditEvent.objects.count()


def test_the_purge_is_recorded_in_history_and_in_one_audit_event_per_category(category: Category) -> None:
    first, second = case_on(CREATED, category), case_on(CREATED, category)

    purge_on(CREATED + timedelta(days=31))

    event = AuditEvent.objects.get(kind=AuditKind.PURGE)
    assert event.category_slug == "refunds" and event.actor_username == "system"
    assert event.payload["cases"] == 2
    assert event.payload["retention_days"] == 30
    assert event.payload["cutoff"] == (CREATED + timedelta(days=1)).isoformat()
    assert (event.payload["first_case_id"], event.payload["last_case_id"]) == (first.pk, second.pk)
    latest = first.history.first()  # type: ignore[attr-defined]
    assert latest.history_change_reason == "Retention purge (30 days)"
    assert latest.history_user.username == SYSTEM_USERNAME
    assert latest.input == REDACTED


def test_no_past_version_keeps_the_raw_input(category: Category, make_user: Any) -> None:
    case = case_on(CREATED, category)
    with time_machine.travel(CREATED + timedelta(hours=1), tick=False):
        services.decide(case=case, user=reviewer_of(category, make_user), action="approve")
    assert case.history.count() >= 2  # type: ignore[attr-defined]

    purge_on(CREATED + timedelta(days=31))

    assert {str(v.input) for v in case.history.all()} == {str(REDACTED)}  # type: ignore[attr-defined]


def test_runjob_runs_the_nightly_purge() -> None:
    job = JOBS["retention_purge"]
    category = make_category("leads")
    Category.objects.filter(pk=category.pk).update(retention_days=1)
    case = case_on(CREATED, category)

    with time_machine.travel(CREATED + timedelta(days=2), tick=False):
        call_command("runjob", "retention_purge")

    assert job.cron == "17 3 * * *"
    assert fresh(case).input["text"] == REDACTED["text"]


# --- by hand, in the admin --------------------------------------------------------------------------------------

PURGE_URL = "/admin/cases/case/purge-expired/"


def test_a_data_curator_purges_by_hand_from_the_case_list(category: Category, make_user: Any) -> None:
    curator = make_user("curator", roles=["Data Curator"], is_staff=True)
    case = case_on(CREATED, category)
    client = login(curator)

    with time_machine.travel(CREATED + timedelta(days=31), tick=False):
        listing = client.get(reverse("admin:cases_case_changelist")).content.decode()
        page = client.get(PURGE_URL)
        done = client.post(PURGE_URL)

    assert PURGE_URL in listing
    assert page.status_code == 200 and "refunds" in page.content.decode()
    assert done.status_code == 302
    assert fresh(case).input == REDACTED
    event = AuditEvent.objects.get(kind=AuditKind.PURGE)
    assert event.actor_username == "curator"
    assert case.history.first().history_user == curator  # type: ignore[attr-defined]


def test_a_superuser_may_purge_by_hand(category: Category, superuser: User) -> None:
    case = case_on(CREATED, category)

    with time_machine.travel(CREATED + timedelta(days=31), tick=False):
        assert login(superuser).post(PURGE_URL).status_code == 302

    assert fresh(case).input == REDACTED


def test_the_purge_by_hand_is_refused_to_a_reviewer(category: Category, make_user: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    manager = make_user("boss", roles=["Escalation Manager"], is_staff=True)
    case = case_on(CREATED, category)

    with time_machine.travel(CREATED + timedelta(days=31), tick=False):
        for user in (reviewer, manager):
            client = login(user)
            assert client.get(PURGE_URL).status_code == 403
            assert client.post(PURGE_URL).status_code == 403
            assert PURGE_URL not in client.get(reverse("admin:cases_case_changelist")).content.decode()

    assert fresh(case).input == RAW
    assert not AuditEvent.objects.filter(kind=AuditKind.PURGE).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_redact_each_input_once() -> None:
    from tests.test_concurrency import race

    category = make_category("refunds")
    Category.objects.filter(pk=category.pk).update(pii_fields=["name"], retention_days=30)
    cases = [case_on(CREATED, Category.objects.get(pk=category.pk)) for _ in range(40)]

    with time_machine.travel(CREATED + timedelta(days=31), tick=False):
        results = race(2, lambda i: purge_expired_inputs(batch_size=7)["purged"])

    assert sum(results) == 40
    assert all(fresh(case).input == REDACTED for case in cases)
    reasons = Case.history.filter(history_change_reason="Retention purge (30 days)")  # type: ignore[attr-defined]
    assert reasons.count() == 40
    assert sum(e.payload["cases"] for e in AuditEvent.objects.filter(kind=AuditKind.PURGE)) == 40
    assert verify_chain().ok
