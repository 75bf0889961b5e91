"""Claims never leak (DESIGN.md, Lifecycle): leaving a case's page without deciding lets its claim go, a claim
that save-and-next made lapses after 2 minutes unless the reviewer works on the case, claim-next hands back a case
the reviewer already holds before any other, and an expired claim reads as free in the API as everywhere."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, Queue
from reviews import services
from reviews.services.claims import LEAVE_GRACE
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def quick(make_user: Any) -> Queue:
    make_category("cat")
    return Queue.objects.get(slug="cat-quick")


@pytest.fixture
def rev(make_user: Any, quick: Queue) -> User:
    user: User = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(user, quick)
    grant_queue(user, Queue.objects.get(slug="cat-full"))
    return user


@pytest.fixture
def other(make_user: Any, quick: Queue) -> User:
    user: User = make_user("other", roles=["Reviewer"], is_staff=True)
    grant_queue(user, quick)
    return user


def case_in(queue: Queue, **fields: Any) -> Case:
    confidence = 0.8 if queue.kind == "quick" else 0.5
    case = make_case(queue.category, confidence=confidence, **fields)
    assert case.queue == queue
    return case


def fresh(case: Case) -> Case:
    return Case.objects.select_related("queue", "claimed_by").get(pk=case.pk)


def page_url(case: Case) -> str:
    return reverse("admin:reviews_work_case", args=[case.pk])


def test_leaving_the_page_lets_the_claim_lapse_within_seconds(quick: Queue, rev: User, other: User) -> None:
    case = case_in(quick)
    services.claim(case=case, user=rev)

    response = login(rev).post(reverse("admin:reviews_work_case_leave", args=[case.pk]))

    assert response.status_code == 204
    left = fresh(case)
    assert left.claimed_by == rev and left.claimed_until <= timezone.now() + LEAVE_GRACE  # a reload finds it still
    with time_machine.travel(timezone.now() + LEAVE_GRACE + timedelta(seconds=1), tick=False):
        assert services.claim_next(user=other, queue=quick) == case  # then it is anyone's
    assert fresh(case).claimed_by == other


def test_leaving_a_case_one_does_not_hold_changes_nothing(quick: Queue, rev: User, other: User) -> None:
    case = case_in(quick)
    services.claim(case=case, user=other)
    until = fresh(case).claimed_until

    assert login(rev).post(reverse("admin:reviews_work_case_leave", args=[case.pk])).status_code == 204

    assert (fresh(case).claimed_by, fresh(case).claimed_until) == (other, until)


def test_a_reload_renews_a_left_claim_to_the_full_duration(quick: Queue, rev: User) -> None:
    case = case_in(quick)
    services.claim(case=case, user=rev)
    client = login(rev)
    client.post(reverse("admin:reviews_work_case_leave", args=[case.pk]))  # the reload's pagehide

    assert client.post(reverse("admin:reviews_work_case_keep", args=[case.pk])).status_code == 204  # its load

    assert fresh(case).claimed_until - timezone.now() > timedelta(minutes=14)


def test_the_review_page_tells_its_script_where_to_keep_and_leave_only_when_the_case_is_held(
    quick: Queue, rev: User
) -> None:
    case = case_in(quick)
    client = login(rev)
    assert "data-claim-leave" not in client.get(page_url(case)).content.decode()
    services.claim(case=case, user=rev)
    body = client.get(page_url(case)).content.decode()
    assert reverse("admin:reviews_work_case_leave", args=[case.pk]) in body
    assert reverse("admin:reviews_work_case_keep", args=[case.pk]) in body


def test_a_save_and_next_claim_lapses_after_two_minutes_without_activity(quick: Queue, rev: User, other: User) -> None:
    first, nxt = case_in(quick), case_in(quick)
    services.claim(case=first, user=rev)

    response = login(rev).post(page_url(first), {"action": "approve"})

    assert response.url == page_url(nxt)
    opened = fresh(nxt)
    assert opened.claimed_by == rev
    assert timedelta(minutes=1) < opened.claimed_until - timezone.now() <= timedelta(minutes=2)
    with time_machine.travel(timezone.now() + timedelta(minutes=2, seconds=1), tick=False):
        assert fresh(nxt).holder_id_at(timezone.now()) is None
        assert services.claim_next(user=other, queue=quick) == nxt


def test_activity_on_the_page_keeps_a_save_and_next_claim_for_the_full_duration(quick: Queue, rev: User) -> None:
    first, nxt = case_in(quick), case_in(quick)
    client = login(rev)
    client.post(page_url(first), {"action": "approve"})
    with time_machine.travel(timezone.now() + timedelta(seconds=90), tick=False):
        assert client.post(reverse("admin:reviews_work_case_keep", args=[nxt.pk])).status_code == 204
        assert fresh(nxt).claimed_until == timezone.now() + timedelta(minutes=15)
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        assert fresh(nxt).holder_id_at(timezone.now()) == rev.pk  # well past the 2 minutes, still theirs


def test_keeping_a_claim_that_lapsed_or_another_holds_is_refused_and_changes_nothing(
    quick: Queue, rev: User, other: User
) -> None:
    case = case_in(quick)
    client = login(rev)
    assert client.post(reverse("admin:reviews_work_case_keep", args=[case.pk])).status_code == 409
    assert fresh(case).claimed_by is None  # typing on an unclaimed case's page does not claim it
    services.claim(case=case, user=other)
    assert client.post(reverse("admin:reviews_work_case_keep", args=[case.pk])).status_code == 409
    assert fresh(case).claimed_by == other


def test_keep_and_leave_are_404_outside_the_grants(quick: Queue, make_user: Any) -> None:
    case = case_in(quick)
    stranger = make_user("stranger", roles=["Reviewer"], is_staff=True)
    for name in ("admin:reviews_work_case_keep", "admin:reviews_work_case_leave"):
        assert login(stranger).post(reverse(name, args=[case.pk])).status_code == 404
        assert login(stranger).get(reverse(name, args=[case.pk])).status_code in (404, 405)


def test_claim_next_gives_back_the_case_the_reviewer_already_holds_first(quick: Queue, rev: User) -> None:
    urgent = case_in(quick, priority="urgent")
    held = case_in(quick)
    services.claim(case=held, user=rev)

    assert services.claim_next(user=rev, queue=quick) == held  # not the more urgent unclaimed one
    assert fresh(urgent).claimed_by is None


def test_claim_next_through_the_api_and_the_work_list_gives_the_own_held_case_first(
    quick: Queue, rev: User, api: Any
) -> None:
    case_in(quick, priority="urgent")
    held = case_in(quick)
    services.claim(case=held, user=rev)
    assert api(rev).post("/api/v1/queues/cat-quick/next/").json()["id"] == held.pk
    response = login(rev).post(reverse("admin:reviews_work_next", args=["cat-quick"]))
    assert response.url == page_url(held)


def test_a_held_claim_keeps_its_time_when_claim_next_hands_it_back_for_a_short_while(quick: Queue, rev: User) -> None:
    held = case_in(quick)
    services.claim(case=held, user=rev)
    until = fresh(held).claimed_until
    services.claim_next(user=rev, queue=quick, duration=services.opened_claim_duration())
    assert fresh(held).claimed_until >= until


def test_skip_moves_to_another_case_even_while_holding_the_skipped_one(quick: Queue, rev: User) -> None:
    current, nxt = case_in(quick, priority="urgent"), case_in(quick)
    services.claim(case=current, user=rev)

    response = login(rev).post(page_url(current), {"action": "skip"})

    assert response.url == page_url(nxt)
    assert fresh(current).claimed_by is None and fresh(current).status == "queued"
    assert fresh(nxt).claimed_by == rev


def test_n_on_my_queues_claims_the_next_case_of_the_first_queue_with_work(quick: Queue, rev: User) -> None:
    full = Queue.objects.get(slug="cat-full")
    waiting = case_in(full)  # cat-quick, listed first, is empty
    client = login(rev)
    page = client.get(reverse("admin:reviews_work")).content.decode()
    assert 'data-key="n"' in page and reverse("admin:reviews_work_my_next") in page

    response = client.post(reverse("admin:reviews_work_my_next"))

    assert response.url == page_url(waiting)
    assert fresh(waiting).claimed_by == rev and fresh(waiting).status == "claimed"


def test_n_on_my_queues_with_no_work_says_so_and_claims_nothing(quick: Queue, rev: User, other: User) -> None:
    held = case_in(quick)
    services.claim(case=held, user=other)
    response = login(rev).post(reverse("admin:reviews_work_my_next"))
    assert response.url == reverse("admin:reviews_work")
    assert fresh(held).claimed_by == other


def test_an_expired_claim_reads_as_free_in_the_api(quick: Queue, rev: User, api: Any) -> None:
    case = case_in(quick)
    services.claim(case=case, user=rev)
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        data = api(rev).get(f"/api/v1/cases/{case.pk}/").json()
    assert (data["status"], data["claimed_by"], data["claimed_until"]) == ("queued", None, None)
    assert fresh(case).status == "claimed"  # nobody cleared it; it reads as free all the same


def test_the_review_page_shows_an_expired_claim_as_waiting(quick: Queue, rev: User) -> None:
    case = case_in(quick)
    services.claim(case=case, user=rev)
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        page = login(rev).get(page_url(case))
    assert page.context["status_now"] == "Queued" and page.context["state"].mine is False


def test_the_case_admin_shows_an_expired_claim_as_waiting_and_held_by_nobody(quick: Queue, rev: User) -> None:
    case = case_in(quick)
    services.claim(case=case, user=rev)
    superuser = User.objects.create_superuser("root", password="x")
    client = login(superuser)
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        listing = client.get(reverse("admin:cases_case_changelist"))
        detail = client.get(reverse("admin:cases_case_change", args=[case.pk]))
    assert 'class="field-status_now">Queued<' in listing.content.decode()
    body = detail.content.decode()
    assert "Queued" in body and ">rev<" not in body
