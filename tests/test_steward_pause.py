"""Model stewards pause and resume the categories granted to them (DESIGN.md, roles), in the admin and the API;
anyone else without `governance.change_category` is refused and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm

from cases.models import Queue
from governance.models import AuditEvent, Category, Incident, Notification
from governance.services import pause_category, resume_category
from governance.services.incidents import advance_incident
from metrics.services.pause import pause_automation
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("stw")


def test_a_steward_pauses_and_resumes_over_the_api(category: Category, make_user: Any, api: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"])
    client = api(steward)
    assert client.post("/api/v1/categories/stw/pause/", {"reason": "override spike"}, format="json").status_code == 200
    category.refresh_from_db()
    assert category.paused and category.paused_by == steward and category.paused_reason == "override spike"
    assert client.post("/api/v1/categories/stw/resume/", {"reason": "fixed"}, format="json").status_code == 200
    assert not Category.objects.get(pk=category.pk).paused


def test_a_reviewer_may_not_pause(category: Category, make_user: Any, api: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"])
    assign_perm("governance.view_category", reviewer, category)
    response = api(reviewer).post("/api/v1/categories/stw/pause/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert "Model Steward" in response.json()["detail"]
    assert not Category.objects.get(pk=category.pk).paused


def test_a_steward_granted_one_category_pauses_only_that_one(category: Category, make_user: Any, api: Any) -> None:
    other = make_category("oth")
    steward = make_user("narrow-steward", is_staff=True)
    steward.user_permissions.add(Permission.objects.get(codename="change_modelversion"))
    assign_perm("governance.view_category", steward, category)
    client = api(steward)
    assert client.post("/api/v1/categories/stw/pause/", {"reason": "x"}, format="json").status_code == 200
    # The other category is not theirs to see: unknown, and untouched.
    assert client.post("/api/v1/categories/oth/pause/", {"reason": "x"}, format="json").status_code == 404
    assert Category.objects.get(pk=category.pk).paused and not Category.objects.get(pk=other.pk).paused
    admin = login(steward)
    url = reverse("admin:governance_category_pause", args=[other.pk])
    assert admin.post(url, {"post": "yes", "reason": "x"}).status_code in (403, 404)
    assert not Category.objects.get(pk=other.pk).paused


def test_a_steward_resumes_from_the_category_page_in_the_admin(category: Category, make_user: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"], is_staff=True)
    admin = login(steward)
    page = admin.get(reverse("admin:governance_category_change", args=[category.pk])).content.decode()
    assert reverse("admin:governance_category_pause", args=[category.pk]) in page
    pause = reverse("admin:governance_category_pause", args=[category.pk])
    assert admin.post(pause, {"post": "yes", "reason": "incident 7"}).status_code == 302
    assert Category.objects.get(pk=category.pk).paused
    resume = reverse("admin:governance_category_resume", args=[category.pk])
    assert admin.post(resume, {"post": "yes", "reason": "remediated"}).status_code == 302
    category.refresh_from_db()
    assert not category.paused and category.resumed_at is not None


def test_a_paused_category_reads_as_a_warning_in_the_list(category: Category, make_user: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"], is_staff=True)
    admin = login(steward)
    listing = reverse("admin:governance_category_changelist")
    assert "icon-alert.svg" not in admin.get(listing).content.decode()
    admin.post(reverse("admin:governance_category_pause", args=[category.pk]), {"post": "yes", "reason": "spike"})
    page = admin.get(listing).content.decode()
    assert 'alt="Warning"> <strong title="spike">paused</strong>' in page
    assert "icon-yes.svg" not in page  # no green tick says "paused"


# --- The resume on the incident the pause opened ---


def auto_pause(category: Category) -> Incident:
    """Pause the category as the pause rule does: the system pauses it and opens an incident already contained."""
    return pause_automation(
        category=category,
        reason="Pause rule: 6 of 100 refused",
        title=f"{category.slug}: automation paused",
        trigger="pause_rule",
        evidence={"rate": 0.06},
        contained_by="automation paused by the pause rule",
        notify_subject="paused",
    )


def test_a_stewards_resume_is_written_on_the_incident_the_pause_opened_and_moves_it_to_investigate(
    category: Category, make_user: Any
) -> None:
    incident = auto_pause(category)
    assert Category.objects.get(pk=category.pk).pause_incident == incident
    steward = make_user("steward", roles=["Model Steward"], is_staff=True)
    resume = reverse("admin:governance_category_resume", args=[category.pk])
    assert login(steward).post(resume, {"post": "yes", "reason": "retrained, overrides back to 2 %"}).status_code == 302
    incident.refresh_from_db()
    assert incident.stage == "investigate"
    last = incident.timeline.last()
    assert last is not None and last.actor == steward and last.stage == "investigate"
    assert last.note == "Automation resumed by steward: retrained, overrides back to 2 %"
    category.refresh_from_db()
    assert not category.paused and category.pause_incident is None
    resumed = AuditEvent.objects.filter(kind="category.resumed", category_slug=category.slug).get()
    assert resumed.payload == {"reason": "retrained, overrides back to 2 %", "incident_id": incident.pk}
    # The incident's page shows the resume on its timeline.
    page = login(steward).get(reverse("admin:governance_incident_change", args=[incident.pk])).content.decode()
    assert "Automation resumed by steward: retrained, overrides back to 2 %" in page


def test_a_resume_without_the_grant_writes_nothing_on_the_incident(category: Category, make_user: Any) -> None:
    incident = auto_pause(category)
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    assign_perm("governance.view_category", reviewer, category)
    resume = reverse("admin:governance_category_resume", args=[category.pk])
    assert login(reviewer).post(resume, {"post": "yes", "reason": "looks fine"}).status_code == 403
    incident.refresh_from_db()
    assert incident.stage == "contain" and incident.timeline.count() == 2
    assert Category.objects.get(pk=category.pk).paused


def test_a_resume_of_an_incident_already_past_investigate_adds_a_note_at_its_stage(
    category: Category, make_user: Any
) -> None:
    incident = auto_pause(category)
    steward = make_user("steward", roles=["Model Steward"])
    advance_incident(incident=incident, user=steward, stage="remediate", note="retraining")
    resume_category(category=category, user=steward, reason="remediated")
    incident.refresh_from_db()
    assert incident.stage == "remediate"
    assert [(e.stage, e.note) for e in incident.timeline.all()][-1] == (
        "remediate",
        "Automation resumed by steward: remediated",
    )


def test_a_pause_by_hand_leaves_the_last_pauses_incident_alone(category: Category, make_user: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"])
    incident = auto_pause(category)
    resume_category(category=category, user=steward, reason="fixed")
    pause_category(category=category, user=steward, reason="by hand")
    assert Category.objects.get(pk=category.pk).pause_incident is None
    resume_category(category=category, user=steward, reason="done")
    assert incident.timeline.count() == 3  # detect, contain, and the first resume only


# --- Telling the people who work the category's queues ---


def test_a_pause_and_a_resume_tell_the_people_who_work_its_queues_and_nobody_else(
    category: Category, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    other = make_category("oth")
    worker = make_user("worker", roles=["Reviewer"])
    for kind in ("quick", "full"):
        grant_queue(worker, Queue.objects.get(category=category, kind=kind))
    elsewhere = make_user("elsewhere", roles=["Reviewer"])
    grant_queue(elsewhere, Queue.objects.get(category=other, kind="quick"))
    steward = make_user("steward", roles=["Model Steward"])
    with django_capture_on_commit_callbacks(execute=True):
        pause_category(category=category, user=steward, reason="override spike")
    [notice] = Notification.objects.filter(user=worker)  # once, though they work two of its queues
    assert notice.kind == "category.paused" and notice.category_slug == "stw"
    assert "override spike" in notice.body
    assert notice.link == reverse("admin:reviews_work_queue", args=["stw-quick"])
    with django_capture_on_commit_callbacks(execute=True):
        resume_category(category=category, user=steward, reason="fixed")
    assert sorted(Notification.objects.filter(user=worker).values_list("kind", flat=True)) == [
        "category.paused",
        "category.resumed",
    ]
    assert not Notification.objects.filter(user__in=[elsewhere, steward]).exists()


# --- The banner on the workplace pages of a paused category's queues ---


def test_the_queue_pages_of_a_paused_category_show_a_banner_and_others_do_not(
    category: Category, make_user: Any
) -> None:
    other = make_category("oth")
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    for each in (category, other):
        grant_queue(reviewer, Queue.objects.get(category=each, kind="quick"))
    pause_category(category=category, user=None, reason="override spike")
    case = make_case(category, confidence=0.99)  # paused: human-first, to the quick queue
    assert case.queue is not None and case.queue.slug == "stw-quick"
    client = login(reviewer)
    for url in (
        reverse("admin:reviews_work_queue", args=["stw-quick"]),
        reverse("admin:reviews_work_case", args=[case.pk]),
    ):
        page = client.get(url).content.decode()
        assert 'id="paused-banner"' in page and "stw is paused" in page and "override spike" in page, url
    assert (
        'id="paused-banner"' not in client.get(reverse("admin:reviews_work_queue", args=["oth-quick"])).content.decode()
    )
    assert (
        '<strong class="hitl-warn" title="override spike">paused</strong>'
        in client.get(reverse("admin:reviews_work")).content.decode()
    )
