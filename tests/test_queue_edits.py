"""The product owner sets the SLA and overflow of their category's queues in the admin, with a reason kept in the
queue's history and the audit trail; another category's queues are not theirs to change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from guardian.shortcuts import assign_perm

from cases.models import Queue
from cases.services.queues import update_queue
from governance.models import AuditEvent, Category
from tests.factories import grant_queue, login, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("owned")


@pytest.fixture
def owner(make_user: Any, category: Category) -> User:
    user = make_user("paula", roles=["Product Owner"], is_staff=True)
    assign_perm("governance.view_category", user, category)
    assign_perm("governance.change_category", user, category)
    return user


def queue(category: Category, kind: str) -> Queue:
    return Queue.objects.select_related("next_queue").get(category=category, kind=kind)


def change_url(q: Queue) -> str:
    return reverse("admin:cases_queue_change", args=[q.pk])


def form(q: Queue, **changes: Any) -> dict[str, str]:
    data = {"sla": str(q.sla), "next_queue": str(q.next_queue_id or ""), "reason": ""}
    data.update({name: str(value) for name, value in changes.items()})
    return data


def test_the_owner_changes_a_queues_sla_and_overflow_with_a_reason(category: Category, owner: User) -> None:
    quick, expert = queue(category, "quick"), queue(category, "expert")
    response = login(owner).post(
        change_url(quick), form(quick, sla="2:00:00", next_queue=expert.pk, reason="customers wait less")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    quick = queue(category, "quick")
    assert (quick.sla, quick.next_queue) == (timedelta(hours=2), expert)
    record = quick.history.first()
    assert record is not None
    assert (record.history_user, record.history_change_reason) == (owner, "customers wait less")
    event = AuditEvent.objects.get(kind="queue.changed", category_slug="owned")
    assert event.actor_id == owner.pk
    assert event.payload == {
        "queue": "owned-quick",
        "changes": {"sla": [86400.0, 7200.0], "next_queue": ["owned-escalation", "owned-expert"]},
        "reason": "customers wait less",
    }


def test_a_change_without_a_reason_is_refused_and_nothing_changes(category: Category, owner: User) -> None:
    quick = queue(category, "quick")
    response = login(owner).post(change_url(quick), form(quick, sla="2:00:00"))
    assert response.status_code == 200
    assert "A reason is required" in response.content.decode()
    assert queue(category, "quick").sla == timedelta(hours=24)
    assert not AuditEvent.objects.filter(kind="queue.changed").exists()


def test_an_overflow_that_leads_back_is_refused_by_its_field(category: Category, owner: User) -> None:
    escalation = queue(category, "escalation")  # quick overflows to escalation already
    quick = queue(category, "quick")
    response = login(owner).post(change_url(escalation), form(escalation, next_queue=quick.pk, reason="loop"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["next_queue"]
    assert errors == [
        "owned-quick leads back to owned-escalation: overdue cases would go round in circles. "
        "Choose a queue whose overflow does not lead back here."
    ]
    assert queue(category, "escalation").next_queue is None


def test_the_overflow_offers_only_the_categorys_other_queues(category: Category, owner: User) -> None:
    make_category("elsewhere")
    quick = queue(category, "quick")
    choices = login(owner).get(change_url(quick)).context["adminform"].form.fields["next_queue"].queryset
    assert sorted(q.slug for q in choices) == ["owned-audit", "owned-escalation", "owned-expert", "owned-full"]


def test_the_owner_of_another_category_may_not_change_this_ones_queues(category: Category, make_user: Any) -> None:
    other = make_category("theirs")
    stranger = make_user("otto", roles=["Product Owner"], is_staff=True)
    assign_perm("governance.change_category", stranger, other)
    quick = queue(category, "quick")
    assert login(stranger).post(change_url(quick), form(quick, sla="1:00:00", reason="x")).status_code == 404
    assert queue(category, "quick").sla == timedelta(hours=24)
    with pytest.raises(Exception, match="needs governance.change_category"):
        update_queue(queue=quick, user=stranger, changes={"sla": timedelta(hours=1)}, reason="x")


def test_a_reviewer_who_works_the_queue_sees_it_but_may_not_change_it(category: Category, make_user: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    quick = queue(category, "quick")
    grant_queue(reviewer, quick)
    client = login(reviewer)
    page = client.get(change_url(quick))
    assert page.status_code == 200 and 'name="sla"' not in page.content.decode()
    assert client.post(change_url(quick), form(quick, sla="1:00:00", reason="x")).status_code == 403
    assert queue(category, "quick").sla == timedelta(hours=24)
