"""The reviewer's workplace in the admin: queues, work lists, the review page and its actions, batches, audits.

Every action goes through reviews.services; the database is asserted after each one. What lies outside the
user's grants is a 404 on every path, and a page costs the same queries whatever the amount of data.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from governance.models import AuditEvent, Category
from reviews import services
from reviews.models import Decision
from reviews.workplace.forms import OPENED_SALT
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db

WORK_URL = "/admin/reviews/work/"


@pytest.fixture(autouse=True)
def category() -> Category:
    return make_category("cat")


def queue(kind: str, slug: str = "cat") -> Queue:
    return Queue.objects.get(slug=f"{slug}-{kind}")


@pytest.fixture
def worker(make_user: Any) -> Any:
    """A staff user with a role who works the named queues of category `cat`."""

    def _make(username: str, *kinds: str, role: str = "Reviewer") -> User:
        user: User = make_user(username, roles=[role], is_staff=True)
        for kind in kinds:
            grant_queue(user, queue(kind))
        return user

    return _make


@pytest.fixture
def reviewer(worker: Any) -> User:
    return worker("rev", "quick", "full")


@pytest.fixture
def manager(worker: Any) -> User:
    return worker("boss", "escalation", "expert", role="Escalation Manager")


def quick_case(**fields: Any) -> Case:
    """A case of `cat` routed to its quick queue (confidence between the review and the auto threshold)."""
    return make_case(Category.objects.get(slug="cat"), confidence=0.8, **fields)


def case_url(case: Case) -> str:
    return reverse("admin:reviews_work_case", args=[case.pk])


def queue_url(slug: str) -> str:
    return reverse("admin:reviews_work_queue", args=[slug])


def stamp(case: Case, seconds_ago: float = 0) -> str:
    return signing.dumps({"scope": f"case:{case.pk}", "at": time.time() - seconds_ago}, salt=OPENED_SALT)


def act(client: Client, case: Case, action: str, **data: Any) -> Any:
    return client.post(case_url(case), {"action": action, **data})


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def fresh(case: Case) -> Case:
    return Case.objects.select_related("queue", "claimed_by").get(pk=case.pk)


# --- My queues ---


def test_my_queues_lists_the_granted_queues_with_depth_and_cases_near_breach(reviewer: User) -> None:
    make_category("other")
    quick_case()
    near = quick_case()
    Case.objects.filter(pk=near.pk).update(due_at=timezone.now() + timedelta(minutes=5))

    response = login(reviewer).get(WORK_URL)

    assert response.status_code == 200
    rows = {row.queue.slug: row for row in response.context["rows"]}
    assert set(rows) == {"cat-quick", "cat-full"}
    assert (rows["cat-quick"].stats.depth, rows["cat-quick"].stats.near_breach) == (2, 1)
    assert rows["cat-quick"].oldest_age


def test_a_group_grant_opens_a_queue_and_superusers_see_every_queue(make_user: Any, superuser: User) -> None:
    team = Group.objects.create(name="Team A")
    grant_queue(team, queue("audit"))
    member = make_user("member", is_staff=True)
    member.groups.add(team)

    assert [row.queue.slug for row in login(member).get(WORK_URL).context["rows"]] == ["cat-audit"]
    assert len(login(superuser).get(WORK_URL).context["rows"]) == 5


def test_my_queues_is_on_the_admin_index_only_for_those_who_work_a_queue(reviewer: User, make_user: Any) -> None:
    assert WORK_URL in login(reviewer).get("/admin/").content.decode()
    curator = make_user("dana", roles=["Data Curator"], is_staff=True)
    assert WORK_URL not in login(curator).get("/admin/").content.decode()


# --- Work list ---


def test_the_work_list_puts_urgent_cases_first_then_the_earliest_due(reviewer: User) -> None:
    early, urgent, late = quick_case(), quick_case(priority="urgent"), quick_case()
    Case.objects.filter(pk=late.pk).update(due_at=timezone.now() + timedelta(days=3))

    rows = login(reviewer).get(queue_url("cat-quick")).context["rows"]

    assert [row.case.pk for row in rows] == [urgent.pk, early.pk, late.pk]


def test_the_work_list_shows_overdue_cases_in_red_and_who_holds_a_case(reviewer: User, worker: Any) -> None:
    overdue = quick_case()
    Case.objects.filter(pk=overdue.pk).update(due_at=timezone.now() - timedelta(minutes=30))
    services.claim(case=overdue, user=worker("other", "quick"))

    response = login(reviewer).get(queue_url("cat-quick"))

    row = response.context["rows"][0]
    assert row.sla.overdue and row.sla.text == "overdue 30m" and row.holder == "other"
    assert 'class="hitl-overdue">overdue 30m' in response.content.decode()


def test_the_work_list_filters_by_route_label_segment_and_priority(reviewer: User) -> None:
    email = quick_case(output={"label": "refund"}, segment={"channel": "email"})
    chat = quick_case(output={"label": "shipping"}, segment={"channel": "chat"}, priority="urgent")
    full = make_case(Category.objects.get(slug="cat"), confidence=0.5, output={"label": "refund"})
    client = login(reviewer)

    def ids(url: str) -> list[int]:
        return [row.case.pk for row in client.get(url).context["rows"]]

    assert ids(queue_url("cat-quick") + "?label=refund") == [email.pk]
    assert ids(queue_url("cat-quick") + "?segment=channel%3Dchat") == [chat.pk]
    assert ids(queue_url("cat-quick") + "?priority=urgent") == [chat.pk]
    assert ids(queue_url("cat-quick") + "?route=full_review") == []
    assert ids(queue_url("cat-full") + "?route=full_review&label=refund") == [full.pk]


def test_blind_cases_hide_their_label_in_the_list_and_never_match_a_label_filter(worker: Any) -> None:
    shadow = make_category("blind", stage="shadow")
    user = worker("rev2")
    grant_queue(user, queue("full", "blind"))
    make_case(shadow, output={"label": "secret-label"}, confidence=0.9)
    client = login(user)

    response = client.get(queue_url("blind-full"))

    assert response.context["rows"][0].blind and "secret-label" not in response.content.decode()
    assert client.get(queue_url("blind-full") + "?label=secret-label").context["rows"] == []


def test_the_work_list_is_paginated(reviewer: User) -> None:
    for _ in range(52):
        quick_case()
    client = login(reviewer)
    assert len(client.get(queue_url("cat-quick")).context["rows"]) == 50
    assert len(client.get(queue_url("cat-quick") + "?page=2").context["rows"]) == 2


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["reviewer", "superuser"])
def test_the_work_list_and_my_queues_cost_the_same_queries_for_5_and_50_cases(
    who: str, reviewer: User, superuser: User
) -> None:
    client = login(reviewer if who == "reviewer" else superuser)
    for _ in range(5):
        quick_case(customer_ref="c1", segment={"channel": "email"})
    _queries(client, queue_url("cat-quick"))  # warm the per-process caches (content types)
    counts = (_queries(client, queue_url("cat-quick")), _queries(client, WORK_URL))
    for index in range(45):
        case = quick_case(customer_ref=f"c{index}", priority="urgent" if index % 3 else "normal")
        if index % 4 == 0:
            services.claim(case=case, user=reviewer)
    assert (_queries(client, queue_url("cat-quick")), _queries(client, WORK_URL)) == counts


# --- The review page ---


def test_the_review_page_shows_the_output_the_context_and_changes_nothing(reviewer: User, worker: Any) -> None:
    case = quick_case(
        output={"label": "refund", "text": "We refund you.", "reasoning": "Order arrived broken."},
        rules_fired=["damaged-goods"],
        customer_ref="cust-7",
        input={"message": "My parcel arrived broken"},
    )
    earlier = quick_case(customer_ref="cust-7", output={"label": "shipping"})
    past = quick_case(output={"label": "refund"})
    services.decide(case=past, user=reviewer, action="reject", reason_code="wrong_label", notes="not a refund")
    make_case(make_category("elsewhere"), customer_ref="cust-7", confidence=0.8)  # not visible to the reviewer

    response = login(reviewer).get(case_url(case))

    assert response.status_code == 200
    body = response.content.decode()
    for text in ("We refund you.", "Order arrived broken.", "damaged-goods", "model@1", "version 1",
                 "My parcel arrived broken", "not a refund", "wrong_label", "Routed quick_review"):  # fmt: skip
        assert text in body, text
    assert [row.case.pk for row, _ in response.context["customer_cases"]] == [earlier.pk]
    assert [row.case.pk for row, _ in response.context["similar"]] == [past.pk]
    assert fresh(case).claimed_by is None and fresh(case).status == "queued"  # opening claims nothing


def test_the_review_page_costs_the_same_queries_with_more_history(reviewer: User) -> None:
    case = quick_case(customer_ref="cust")
    quick_case(customer_ref="cust")  # one other case of the customer, so the context's queries all run already
    client = login(reviewer)
    _queries(client, case_url(case))
    before = _queries(client, case_url(case))
    for _ in range(12):
        other = quick_case(customer_ref="cust")
        services.decide(case=other, user=reviewer, action="correct", output={"label": "x"}, seconds_spent=3)
    services.claim(case=case, user=reviewer)
    assert _queries(client, case_url(case)) == before


def test_a_blind_case_hides_the_model_until_decided_then_shows_the_agreement(worker: Any) -> None:
    shadow = make_category("blind", stage="shadow")
    user = worker("rev2")
    grant_queue(user, queue("full", "blind"))
    case = make_case(shadow, output={"label": "refund", "text": "model draft"}, confidence=0.9)
    client = login(user)

    body = client.get(case_url(case)).content.decode()
    assert "refund" not in body and "model draft" not in body and "Hidden: this is a shadow case" in body

    response = act(client, case, "correct", label="deny", new_label="1", opened=stamp(case))
    assert "you said deny, the model said refund" in " ".join(texts(response))
    assert (fresh(case).status, fresh(case).final_output) == ("corrected", {"label": "deny"})
    assert Decision.objects.get(case=case).action == "correct"
    after = client.get(case_url(case))
    assert after.context["agreement"].agrees is False and "the model said refund" in after.content.decode()


# --- Actions ---


def test_claim_holds_the_case_for_15_minutes_and_shows_the_expiry(reviewer: User) -> None:
    case = quick_case()
    client = login(reviewer)
    act(client, case, "claim")
    case = fresh(case)
    assert case.claimed_by == reviewer and case.status == "claimed"
    assert timedelta(minutes=14) < case.claimed_until - timezone.now() <= timedelta(minutes=15)
    assert "Claimed by you until" in client.get(case_url(case)).content.decode()


def test_release_gives_the_case_back(reviewer: User) -> None:
    case = quick_case()
    services.claim(case=case, user=reviewer)
    response = act(login(reviewer), case, "release")
    assert response.status_code == 302 and response.url == queue_url("cat-quick")
    assert (fresh(case).claimed_by, fresh(case).status) == (None, "queued")


def test_approve_records_seconds_spent_and_opens_the_next_case_already_claimed(reviewer: User) -> None:
    case, later = quick_case(), quick_case()
    Case.objects.filter(pk=later.pk).update(due_at=timezone.now() + timedelta(days=2))
    urgent_next = quick_case(priority="urgent")
    services.claim(case=case, user=reviewer)

    response = act(login(reviewer), case, "approve", opened=stamp(case, seconds_ago=42))

    assert response.status_code == 302 and response.url == case_url(urgent_next)
    assert (fresh(case).status, fresh(case).final_output) == ("approved", case.output)
    decision = Decision.objects.get(case=case)
    assert decision.action == "approve" and 42 <= decision.seconds_spent <= 44
    assert (fresh(urgent_next).claimed_by, fresh(urgent_next).status) == (reviewer, "claimed")


def test_the_last_decision_of_a_queue_goes_back_to_the_queue(reviewer: User) -> None:
    case = quick_case()
    response = act(login(reviewer), case, "approve", opened="forged")
    assert response.url == queue_url("cat-quick")
    assert Decision.objects.get(case=case).seconds_spent is None  # a stamp that is not ours measures nothing


def test_correct_stores_the_edited_label_and_draft(reviewer: User) -> None:
    case = quick_case(output={"label": "refund", "text": "Yes.", "reasoning": "r", "score": 0.8, "amount": 5})
    act(login(reviewer), case, "correct", label="deny", new_label="1", text="Sorry, no.", notes="policy says no")
    assert fresh(case).status == "corrected"
    assert fresh(case).final_output == {"label": "deny", "text": "Sorry, no.", "amount": 5}
    assert Decision.objects.get(case=case).notes == "policy says no"


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("correct", {"label": " "}, "non-empty `label`"),
        ("reject", {}, "A reason code is required"),
        ("escalate", {}, "A reason code is required"),
        ("reject", {"reason_code": "nonsense"}, "not one of the available choices"),
    ],
)
def test_a_decision_the_service_refuses_is_a_message_and_changes_nothing(
    reviewer: User, action: str, data: dict[str, str], message: str
) -> None:
    case = quick_case()
    events = AuditEvent.objects.count()
    response = act(login(reviewer), case, action, **data)
    assert response.status_code == 400  # the page again, with the message and what was typed
    assert any(message in text for text in texts(response)), texts(response)
    assert fresh(case).status == "queued" and not Decision.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("action", "reason", "status", "queue_slug"),
    [
        ("reject", "wrong_label", "rejected", "cat-quick"),
        ("reject", "policy_legal", "escalated", "cat-escalation"),
        ("escalate", "high_risk", "escalated", "cat-escalation"),
        ("escalate", "needs_expert", "escalated", "cat-expert"),
    ],
)
def test_reject_and_escalate_go_where_their_reason_says(
    reviewer: User, action: str, reason: str, status: str, queue_slug: str
) -> None:
    case = quick_case()
    act(login(reviewer), case, action, reason_code=reason)
    assert (fresh(case).status, fresh(case).queue.slug) == (status, queue_slug)
    assert Decision.objects.get(case=case).reason_code == reason


def test_a_case_held_by_another_or_already_decided_is_refused(reviewer: User, worker: Any) -> None:
    held, decided = quick_case(), quick_case()
    services.claim(case=held, user=worker("other", "quick"))
    services.decide(case=decided, user=reviewer, action="approve")
    client = login(reviewer)

    assert "is claimed by other" in " ".join(texts(act(client, held, "approve")))
    assert "already decided" in " ".join(texts(act(client, decided, "reject", reason_code="other")))
    assert "is claimed by other" in " ".join(texts(act(client, held, "claim")))
    assert fresh(held).claimed_by.username == "other" and fresh(held).status == "claimed"
    assert fresh(decided).status == "approved" and Decision.objects.count() == 1


def test_skip_releases_the_case_and_opens_the_next_one(reviewer: User) -> None:
    first, second = quick_case(), quick_case()
    client = login(reviewer)
    client.post(reverse("admin:reviews_work_next", args=["cat-quick"]))
    assert fresh(first).claimed_by == reviewer

    response = act(client, first, "skip")

    assert response.url == case_url(second)
    assert fresh(first).claimed_by is None and fresh(second).claimed_by == reviewer


def test_skipping_an_unclaimed_case_moves_on_and_leaves_it_unclaimed(reviewer: User) -> None:
    first, second = quick_case(), quick_case()
    response = act(login(reviewer), first, "skip")
    assert response.url == case_url(second)
    assert (fresh(first).claimed_by, fresh(first).status) == (None, "queued")
    assert fresh(second).claimed_by == reviewer


def test_claim_next_opens_the_most_urgent_case_claimed_or_says_the_queue_is_empty(reviewer: User) -> None:
    client = login(reviewer)
    empty = client.post(reverse("admin:reviews_work_next", args=["cat-quick"]))
    assert empty.url == queue_url("cat-quick") and "No unclaimed case" in texts(empty)[-1]
    quick_case()
    urgent = quick_case(priority="urgent")
    assert client.post(reverse("admin:reviews_work_next", args=["cat-quick"])).url == case_url(urgent)
    assert fresh(urgent).claimed_by == reviewer


# --- Batch approval ---


def test_batch_approval_confirms_then_approves_and_reports_what_it_skipped(reviewer: User, worker: Any) -> None:
    ok1, ok2, held, decided, elsewhere = (quick_case(output={"label": f"l{i}"}) for i in range(5))
    services.claim(case=held, user=worker("other", "quick"))
    services.decide(case=decided, user=reviewer, action="reject", reason_code="other")
    hidden = make_case(make_category("secret"), confidence=0.8)
    Case.objects.filter(pk=elsewhere.pk).update(queue=queue("full"))
    ids = [ok1.pk, ok2.pk, held.pk, decided.pk, elsewhere.pk, hidden.pk]
    client = login(reviewer)
    url = reverse("admin:reviews_work_batch", args=["cat-quick"])

    confirm = client.post(url, {"case": ids})
    assert confirm.status_code == 200 and not Decision.objects.filter(batch_id__isnull=False).exists()
    assert {row.case.pk for row in confirm.context["rows"]} == {ok1.pk, ok2.pk, held.pk}
    opened = signing.dumps({"scope": f"queue:{queue('quick').pk}", "at": time.time() - 60}, salt=OPENED_SALT)
    response = client.post(url, {"case": ids, "post": "yes", "opened": opened})

    batch = Decision.objects.filter(batch_id__isnull=False)
    assert all(seconds and seconds > 0 for seconds in batch.values_list("seconds_spent", flat=True))
    assert sorted(batch.values_list("case_id", flat=True)) == [ok1.pk, ok2.pk]
    assert len(set(batch.values_list("batch_id", flat=True))) == 1
    assert fresh(held).status == "claimed" and fresh(decided).status == "rejected"
    messages = " ".join(texts(response))
    assert f"Approved 2 case(s) in batch {batch[0].batch_id}" in messages
    assert f"Skipped #{held.pk}: Case {held.pk} is claimed by other" in messages
    assert f"Skipped #{decided.pk}: not in this queue" not in messages
    assert f"Skipped #{decided.pk}: Case {decided.pk} is already decided" in messages
    assert f"Skipped #{elsewhere.pk}: not in this queue" in messages
    assert f"Skipped #{hidden.pk}: not found" in messages


def test_batch_approval_is_refused_where_the_queue_does_not_allow_it(reviewer: User) -> None:
    case = make_case(Category.objects.get(slug="cat"), confidence=0.5)
    url = reverse("admin:reviews_work_batch", args=["cat-full"])
    response = login(reviewer).post(url, {"case": [case.pk], "post": "yes"})
    assert "does not allow batch approval" in texts(response)[-1]
    assert fresh(case).status == "queued"


# --- Escalation managers ---


def test_an_escalation_manager_sees_who_escalated_and_why_and_reassigns(
    reviewer: User, manager: User, worker: Any
) -> None:
    case = quick_case()
    act(login(reviewer), case, "escalate", reason_code="high_risk", notes="amount looks off")
    client = login(manager)
    assert [row.case.pk for row in client.get(queue_url("cat-escalation")).context["rows"]] == [case.pk]

    page = client.get(case_url(case))
    assert [(d.actor, d.reason_code) for d in page.context["escalations"]] == [(reviewer, "high_risk")]
    assert "amount looks off" in page.content.decode() and page.context["reassign_form"] is not None

    expert = worker("expert", "expert")
    response = act(client, case, "reassign", queue=queue("expert").pk, assignee="expert", reason="tax question")
    assert response.url == queue_url("cat-escalation")
    assert (fresh(case).queue.slug, fresh(case).claimed_by) == ("cat-expert", expert)
    assert AuditEvent.objects.get(kind="case.reassigned").payload["reason"] == "tax question"


def test_reassign_is_only_offered_to_and_done_by_those_who_may(reviewer: User, manager: User) -> None:
    case = quick_case()
    client = login(reviewer)
    assert client.get(case_url(case)).context["reassign_form"] is None
    response = act(client, case, "reassign", queue=queue("full").pk, reason="x")
    assert "Reassigning needs cases.change_case" in texts(response)[-1]
    act(login(reviewer), case, "escalate", reason_code="policy_legal")
    missing_reason = act(login(manager), case, "reassign", queue=queue("expert").pk, reason="")
    assert "A reason is required" in texts(missing_reason)[-1]
    assert fresh(case).queue.slug == "cat-escalation"


def test_the_escalation_manager_decides_and_it_is_final(reviewer: User, manager: User) -> None:
    case = quick_case()
    act(login(reviewer), case, "escalate", reason_code="policy_legal")
    act(login(manager), case, "reject", reason_code="policy_legal")
    assert (fresh(case).status, fresh(case).queue.slug) == ("rejected", "cat-escalation")


# --- Audits of auto-approved cases ---


@pytest.fixture
def audit_case(worker: Any) -> tuple[Case, User]:
    audited = make_category("aud", audit_rate=1.0)
    auditor = worker("auditor")
    grant_queue(auditor, queue("audit", "aud"))
    return make_case(audited, confidence=0.99, output={"label": "ok"}), auditor


def test_an_auditor_confirms_an_auto_case_from_the_audit_queue(audit_case: tuple[Case, User]) -> None:
    case, auditor = audit_case
    client = login(auditor)
    assert [row.case.pk for row in client.get(queue_url("aud-audit")).context["rows"]] == [case.pk]
    assert re.search(r'value="confirm"', client.get(case_url(case)).content.decode())
    act(client, case, "confirm")
    assert (fresh(case).status, fresh(case).audit_status) == ("auto_approved", "confirmed")


def test_a_flag_needs_the_correct_output_and_a_reason(audit_case: tuple[Case, User]) -> None:
    case, auditor = audit_case
    client = login(auditor)
    assert "A reason code is required" in texts(act(client, case, "flag", label="wrong", new_label="1"))[-1]
    assert "non-empty `label`" in texts(act(client, case, "flag", reason_code="wrong_label"))[-1]
    assert fresh(case).audit_status == "pending"
    act(client, case, "flag", label="wrong", new_label="1", reason_code="wrong_label")
    decision = Decision.objects.get(case=case)
    assert (fresh(case).audit_status, decision.action, decision.output_after) == (
        "flagged",
        "flag",
        {"label": "wrong"},
    )


# --- The grant boundary: 404 for what is not yours ---


def test_every_path_is_404_outside_the_grants_and_200_inside(reviewer: User, make_user: Any) -> None:
    make_category("other")
    outside = make_case(Category.objects.get(slug="other"), confidence=0.8)
    inside = quick_case()
    client = login(reviewer)
    for url in (queue_url("other-quick"), case_url(outside)):
        assert client.get(url).status_code == 404, url
    for url, data in (
        (case_url(outside), {"action": "approve"}),
        (case_url(outside), {"action": "claim"}),
        (case_url(outside), {"action": "reassign", "reason": "x"}),
        (reverse("admin:reviews_work_next", args=["other-quick"]), {}),
        (reverse("admin:reviews_work_batch", args=["other-quick"]), {"case": [outside.pk], "post": "yes"}),
    ):
        assert client.post(url, data).status_code == 404, url
    assert fresh(outside).status == "queued" and fresh(outside).claimed_by is None
    assert not Decision.objects.exists()

    assert client.get(queue_url("cat-quick")).status_code == 200
    assert client.get(case_url(inside)).status_code == 200
    owner = make_user("po", roles=["Product Owner"], is_staff=True)  # sees the category, works no queue of it
    assign_perm("governance.change_category", owner, inside.category)
    assert login(owner).get(case_url(inside)).status_code == 404
    assert login(owner).get(queue_url("cat-quick")).status_code == 404


def test_anonymous_users_are_sent_to_the_login(reviewer: User) -> None:
    case = quick_case()
    response = Client().post(case_url(case), {"action": "approve"})
    assert response.status_code == 302 and "/admin/login/" in response.url
    assert fresh(case).status == "queued"
