"""Batch approval worth its name: what each case says beside the model's answer, a cap from the policy
(`batch_max`), the batch's median seconds per case on its audit event, and the rubber-stamp alert counting it.

Through the admin (the Django test client) and the API, with the database asserted after each request.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core import signing
from django.urls import reverse
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from governance.choices import AuditKind
from governance.models import AuditEvent, Category, Policy
from governance.models.categories import MAX_BATCH_MAX
from governance.services import update_policy
from metrics.models import AlertRule
from metrics.services.alerts import evaluate
from reviews import services
from reviews.models import Decision
from reviews.services.decisions import split_seconds
from reviews.workplace.forms import OPENED_SALT
from tests.factories import grant_queue, login, make_case, make_category
from tests.test_admin import policy_form

pytestmark = pytest.mark.django_db

BATCH_URL = reverse("admin:reviews_work_batch", args=["cat-quick"])
LIST_URL = reverse("admin:reviews_work_queue", args=["cat-quick"])
TICKET = {
    "subject": "Parcel never arrived",
    "body": "I ordered a lamp two weeks ago and the parcel never came. Write to me at jane.doe@example.com.",
    "from": "Jane Doe <jane.doe@example.com>",
    "language": "en",
}


@pytest.fixture(autouse=True)
def category() -> Category:
    return make_category("cat")


@pytest.fixture
def reviewer(make_user: Any) -> User:
    user: User = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(user, Queue.objects.get(slug="cat-quick"))
    return user


def quick_case(**fields: Any) -> Case:
    """A case of `cat` routed to its quick queue (confidence between the review and the auto threshold)."""
    return make_case(Category.objects.get(slug="cat"), confidence=0.8, **fields)


def list_stamp(seconds_ago: float) -> str:
    """The work list's signed opening time, as the page would have rendered it `seconds_ago`."""
    scope = f"queue:{Queue.objects.get(slug='cat-quick').pk}"
    return signing.dumps({"scope": scope, "at": time.time() - seconds_ago}, salt=OPENED_SALT)


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def set_batch_max(category: Category, value: int) -> None:
    update_policy(category=category, user=None, changes={"batch_max": value}, reason="test")


# --- the policy's batch_max ---


def test_batch_max_defaults_to_25_and_a_patch_makes_a_new_policy_version(make_user: Any, api: Any) -> None:
    owner = make_user("owner", roles=["Product Owner"])
    category = Category.objects.get(slug="cat")
    assign_perm("governance.change_category", owner, category)
    assert api(owner).get("/api/v1/categories/cat/").json()["policy"]["batch_max"] == 25

    response = api(owner).patch("/api/v1/categories/cat/policy/", {"batch_max": 10, "reason": "smaller"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["version"], response.json()["batch_max"]) == (2, 10)
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.batch_max) == (2, 10)
    assert policy.history.first().history_change_reason == "smaller"


@pytest.mark.parametrize("value", [0, -1, MAX_BATCH_MAX + 1, "many", None, 2.5])
def test_a_bad_batch_max_is_refused_naming_the_field(make_user: Any, api: Any, value: Any) -> None:
    owner = make_user("owner", roles=["Product Owner"])
    assign_perm("governance.change_category", owner, Category.objects.get(slug="cat"))

    response = api(owner).patch("/api/v1/categories/cat/policy/", {"batch_max": value, "reason": "x"}, format="json")

    assert response.status_code == 400
    assert "batch_max" in response.json()
    assert Policy.objects.get(category__slug="cat").version == 1


def test_a_new_category_takes_batch_max_from_its_policy_object(superuser: User, api: Any) -> None:
    body = {"slug": "new", "name": "New", "pattern": "exception", "stage": "live", "policy": {"batch_max": 40}}

    response = api(superuser).post("/api/v1/categories/", body, format="json")

    assert response.status_code == 201, response.content
    assert Policy.objects.get(category__slug="new").batch_max == 40


def test_the_product_owner_sets_batch_max_in_the_admin(make_user: Any) -> None:
    owner = make_user("owner", roles=["Product Owner"], is_staff=True)
    category = Category.objects.get(slug="cat")
    assign_perm("governance.change_category", owner, category)
    client = login(owner)
    url = reverse("admin:governance_category_change", args=[category.pk])

    refused = client.post(url, policy_form(category.policy, reason="x", batch_max=MAX_BATCH_MAX + 1))
    assert refused.status_code == 200 and "batch_max" in refused.context["adminform"].form.errors
    assert Policy.objects.get(category=category).version == 1
    response = client.post(url, policy_form(category.policy, reason="read what you approve", batch_max=5))

    assert response.status_code == 302
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.batch_max) == (2, 5)


# --- the cap ---


def test_a_selection_over_the_cap_is_refused_at_the_confirmation_naming_the_cap(reviewer: User) -> None:
    set_batch_max(Category.objects.get(slug="cat"), 2)
    ids = [quick_case().pk for _ in range(3)]

    response = login(reviewer).post(BATCH_URL, {"case": ids})

    assert response.status_code == 302 and response.url == LIST_URL
    assert "A batch holds at most 2 cases (the policy's batch_max); 3 were selected." in texts(response)[-1]


def test_an_approval_over_the_cap_writes_nothing(reviewer: User) -> None:
    set_batch_max(Category.objects.get(slug="cat"), 2)
    ids = [quick_case().pk for _ in range(3)]
    events_before = AuditEvent.objects.count()

    response = login(reviewer).post(BATCH_URL, {"case": ids, "post": "yes", "opened": list_stamp(30)})

    assert "at most 2 cases" in texts(response)[-1]
    assert not Decision.objects.exists()
    assert set(Case.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}
    assert AuditEvent.objects.count() == events_before


def test_a_batch_at_the_cap_is_approved(reviewer: User) -> None:
    set_batch_max(Category.objects.get(slug="cat"), 2)
    ids = [quick_case().pk for _ in range(2)]

    login(reviewer).post(BATCH_URL, {"case": ids, "post": "yes", "opened": list_stamp(30)})

    assert set(Case.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"approved"}


def test_the_api_refuses_a_batch_over_the_cap_with_400_naming_cases(reviewer: User, api: Any) -> None:
    set_batch_max(Category.objects.get(slug="cat"), 2)
    ids = [quick_case().pk for _ in range(3)]

    response = api(reviewer).post("/api/v1/queues/cat-quick/batch-approve/", {"cases": ids}, format="json")

    assert response.status_code == 400
    assert "at most 2 cases" in response.json()["cases"][0]
    assert not Decision.objects.exists()


# --- what the list and the confirmation show ---


def test_the_work_list_shows_each_case_message_opening_redacted_beside_label_and_draft(reviewer: User) -> None:
    case = quick_case(input=TICKET, output={"label": "technical", "text": "Try restarting the router."})

    response = login(reviewer).get(LIST_URL)

    [row] = response.context["rows"]
    assert row.case == case
    assert row.opening.startswith("Parcel never arrived · I ordered a lamp two weeks ago")
    assert "[email]" in row.opening and "jane.doe" not in response.content.decode()
    assert row.label == "technical" and row.text == "Try restarting the router."


def test_the_confirmation_shows_each_case_input_customer_and_value(reviewer: User) -> None:
    ticket = quick_case(input=TICKET, customer_ref="CUST-0042", value=89)
    lead = quick_case(input={"company": "Acme", "message": "We need 40 seats by March."}, customer_ref="ACC-1")
    refund = quick_case(input={"order_id": "ORD-1", "reason": "Item arrived damaged"}, customer_ref="CUST-7")

    response = login(reviewer).post(BATCH_URL, {"case": [ticket.pk, lead.pk, refund.pk]})

    assert response.status_code == 200
    assert not Decision.objects.exists()
    page = response.content.decode()
    for opening in ("Parcel never arrived · I ordered a lamp", "We need 40 seats by March.", "Item arrived damaged"):
        assert opening in page
    for customer in ("CUST-0042", "ACC-1", "CUST-7"):
        assert customer in page
    assert "89.00" in page
    assert "jane.doe@example.com" not in page


def test_a_user_with_view_pii_sees_the_opening_as_submitted(make_user: Any) -> None:
    manager = make_user("boss", roles=["Escalation Manager"], is_staff=True)
    grant_queue(manager, Queue.objects.get(slug="cat-quick"))
    quick_case(input=TICKET)

    [row] = login(manager).get(LIST_URL).context["rows"]

    assert "jane.doe@example.com" in row.opening


def test_the_opening_falls_back_to_the_input_text_fields_and_honours_pii_fields(reviewer: User) -> None:
    Category.objects.filter(slug="cat").update(pii_fields=["customer_name"])
    quick_case(input={"customer_name": "Jane Doe", "note_to_agent": "Second time asking", "count": 3})

    [row] = login(reviewer).get(LIST_URL).context["rows"]

    assert row.opening == "[redacted] · Second time asking"


# --- the batch's time ---


def test_split_seconds_adds_up_to_the_batch_time() -> None:
    assert split_seconds(10, 3) == [4, 3, 3]
    assert split_seconds(2, 4) == [1, 1, 0, 0]
    assert split_seconds(None, 2) == [None, None]


def test_the_batch_records_its_median_seconds_per_case_on_its_audit_event(reviewer: User) -> None:
    ids = [quick_case().pk for _ in range(3)]

    response = login(reviewer).post(BATCH_URL, {"case": ids, "post": "yes", "opened": list_stamp(31)})

    decisions = Decision.objects.filter(case_id__in=ids)
    seconds = sorted(decisions.values_list("seconds_spent", flat=True))
    assert len(seconds) == 3 and sum(seconds) in (31, 32) and max(seconds) - min(seconds) <= 1
    [event] = AuditEvent.objects.filter(kind=AuditKind.BATCH_APPROVED)
    batch_id = str(decisions.first().batch_id)
    assert event.payload["batch_id"] == batch_id and event.category_slug == "cat"
    assert sorted(event.payload["cases"]) == sorted(ids)
    assert event.payload["seconds_spent"] == sum(seconds)
    assert event.payload["median_seconds_per_case"] == seconds[1]
    assert event.actor_username == "rev"
    assert f"in batch {batch_id} ({seconds[1]:g} s a case)" in texts(response)[-1]


def test_a_confirmation_without_the_lists_stamp_times_the_batch_from_itself(reviewer: User) -> None:
    ids = [quick_case().pk for _ in range(2)]
    client = login(reviewer)

    confirm = client.post(BATCH_URL, {"case": ids, "opened": "forged"})
    client.post(BATCH_URL, {"case": ids, "post": "yes", "opened": confirm.context["stamp"]})

    assert all(s is not None for s in Decision.objects.values_list("seconds_spent", flat=True))
    assert AuditEvent.objects.get(kind=AuditKind.BATCH_APPROVED).payload["median_seconds_per_case"] is not None


def test_a_batch_that_approves_nothing_records_no_batch_event(reviewer: User, make_user: Any) -> None:
    case = quick_case()
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, Queue.objects.get(slug="cat-quick"))
    services.claim(case=case, user=other)

    result = services.batch_approve(user=reviewer, queue=Queue.objects.get(slug="cat-quick"), case_ids=[case.pk])

    assert result.approved == [] and result.median_seconds_per_case is None
    assert not AuditEvent.objects.filter(kind=AuditKind.BATCH_APPROVED).exists()


# --- the rubber-stamp alert ---


def test_the_rubber_stamp_alert_counts_batch_approvals_with_their_seconds(reviewer: User) -> None:
    category = Category.objects.get(slug="cat")
    set_batch_max(category, MAX_BATCH_MAX)
    queue = Queue.objects.get(slug="cat-quick")
    ids = [quick_case().pk for _ in range(50)]

    services.batch_approve(user=reviewer, queue=queue, case_ids=ids, seconds_spent=80)

    [alert] = evaluate(AlertRule.objects.get(category=category, kind="rubber_stamping"))
    assert alert.subject == "rev"
    assert alert.details["decisions"] == 50 and alert.details["batch_decisions"] == 50
    assert alert.details["median_seconds"] == 2  # 80 s over 50 cases: 30 cases of 2 s, 20 of 1 s


def test_the_rubber_stamp_alert_counts_batches_beside_single_decisions(reviewer: User) -> None:
    category = Category.objects.get(slug="cat")
    queue = Queue.objects.get(slug="cat-quick")
    for _ in range(30):
        services.decide(case=quick_case(), user=reviewer, action="approve", seconds_spent=1)
    services.batch_approve(user=reviewer, queue=queue, case_ids=[quick_case().pk for _ in range(20)], seconds_spent=20)

    [alert] = evaluate(AlertRule.objects.get(category=category, kind="rubber_stamping"))

    assert (alert.details["decisions"], alert.details["batch_decisions"]) == (50, 20)


def test_the_api_answers_a_batch_with_its_median_seconds_per_case(reviewer: User, api: Any) -> None:
    ids = [quick_case().pk for _ in range(3)]

    response = api(reviewer).post(
        "/api/v1/queues/cat-quick/batch-approve/", {"cases": ids, "seconds_spent": 10}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["median_seconds_per_case"] == 3.0  # shares of 4, 3 and 3 seconds
    assert sorted(Decision.objects.values_list("seconds_spent", flat=True)) == [3, 3, 4]
