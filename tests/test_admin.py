"""The admin: every write goes through a service with a reason, and nobody sees past their grants."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from governance.choices import AuditKind, ModelStatus
from governance.models import AuditEvent, Category, ModelVersion, Policy
from governance.services import POLICY_FIELDS
from reviews.models import Decision
from tests.factories import grant_queue, login, make_case, make_category, model_version

pytestmark = pytest.mark.django_db


def form_value(value: Any) -> str:
    """As the form shows it: lists one entry per line, the audit multipliers one `stratum = factor` per line."""
    if isinstance(value, list):
        return "\n".join(value)
    if isinstance(value, dict):
        return "\n".join(f"{key} = {factor}" for key, factor in value.items())
    return "" if value is None else str(value)


def policy_form(policy: Policy, reason: str = "", **changes: Any) -> dict[str, str]:
    """The category change form as a browser would post it: the current policy with `changes`, and a reason."""
    data = {name: form_value(changes.get(name, getattr(policy, name))) for name in POLICY_FIELDS}
    data["reason"] = reason
    return data


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(model: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def staff(make_user: Any) -> Any:
    def _make(username: str, *roles: str) -> User:
        return make_user(username, roles=list(roles), is_staff=True)

    return _make


# --- Policy: a new version through the service, with a reason ---


def test_policy_change_creates_version_2_with_reason_in_history_and_audit(superuser: User) -> None:
    category = make_category("refunds")
    response = login(superuser).post(
        change_url(category), policy_form(category.policy, reason="Too many refunds slip through", auto_threshold=0.97)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.auto_threshold) == (2, 0.97)
    latest = policy.history.latest()
    assert latest.history_change_reason == "Too many refunds slip through"
    assert latest.history_user == superuser
    event = AuditEvent.objects.filter(kind=AuditKind.POLICY_CHANGED, category_slug="refunds").get()
    assert event.payload["reason"] == "Too many refunds slip through"
    assert event.payload["changes"] == {"auto_threshold": [0.95, 0.97]}
    assert event.actor_username == "root"


def test_policy_change_without_reason_is_refused(superuser: User) -> None:
    category = make_category("refunds")
    events_before = AuditEvent.objects.count()

    response = login(superuser).post(
        change_url(category), policy_form(category.policy, reason="  ", auto_threshold=0.9)
    )

    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.auto_threshold) == (1, 0.95)
    assert policy.history.count() == 1
    assert AuditEvent.objects.count() == events_before


def test_policy_change_breaking_the_threshold_order_is_refused(superuser: User) -> None:
    category = make_category("refunds")

    response = login(superuser).post(
        change_url(category), policy_form(category.policy, reason="Try it", review_threshold=0.96)
    )

    assert response.status_code == 200
    assert "review_threshold" in response.context["adminform"].form.errors
    assert Policy.objects.get(category=category).version == 1


def test_policy_history_shows_each_change_with_its_reason(superuser: User) -> None:
    category = make_category("refunds")
    client = login(superuser)
    client.post(change_url(category), policy_form(category.policy, reason="Ramp up", auto_share=50))

    response = client.get(reverse("admin:governance_policy_history", args=[category.policy.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Ramp up" in body
    assert "100.0" in body and "50.0" in body  # the diff from the version before


def test_past_versions_cannot_be_restored_from_the_history_pages(superuser: User) -> None:
    category = make_category("refunds")
    first = category.policy.history.earliest()
    url = reverse("admin:governance_policy_simple_history", args=[category.policy.pk, first.history_id])
    client = login(superuser)

    assert client.get(url).status_code == 302
    assert client.post(url, policy_form(category.policy, auto_share=10)).status_code == 403
    assert Policy.objects.get(category=category).auto_share == 100


# --- Categories: created by the service, paused and resumed with a reason ---


def test_category_created_in_admin_gets_five_queues_and_policy_version_1(superuser: User) -> None:
    defaults = Policy()
    data = {
        "slug": "invoices",
        "name": "Invoice exceptions",
        "description": "",
        "pattern": "exception",
        "stage": "live",
        "consequence": "high",
        "pii_fields": "",
        "retention_days": "365",
        "baseline_minutes_per_case": "6.5",
        **policy_form(defaults, reason="", auto_threshold=0.9),
    }

    response = login(superuser).post(reverse("admin:governance_category_add"), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    category = Category.objects.get(slug="invoices")
    assert sorted(Queue.objects.filter(category=category).values_list("kind", flat=True)) == sorted(
        ["quick", "full", "escalation", "expert", "audit"]
    )
    assert (category.policy.version, category.policy.auto_threshold) == (1, 0.9)
    assert AuditEvent.objects.filter(kind=AuditKind.CATEGORY_CREATED, category_slug="invoices").exists()


def test_pause_action_asks_for_a_reason_and_refuses_an_empty_one(superuser: User) -> None:
    category = make_category("refunds")
    client = login(superuser)
    post = {"action": "pause_selected", "_selected_action": [category.pk]}

    assert client.post(changelist_url(Category), post).status_code == 200  # the page asking why
    refused = client.post(changelist_url(Category), {**post, "post": "yes", "reason": ""})
    assert refused.status_code == 200
    assert not Category.objects.get(pk=category.pk).paused

    done = client.post(changelist_url(Category), {**post, "post": "yes", "reason": "Rejections spiked"})

    assert done.status_code == 302
    category.refresh_from_db()
    assert category.paused and category.paused_reason == "Rejections spiked" and category.paused_by == superuser
    assert AuditEvent.objects.filter(kind=AuditKind.CATEGORY_PAUSED, category_slug="refunds").exists()


def test_resume_from_the_category_page_goes_through_the_service(superuser: User) -> None:
    category = make_category("refunds")
    client = login(superuser)
    client.post(reverse("admin:governance_category_pause", args=[category.pk]), {"post": "yes", "reason": "Incident"})
    assert Category.objects.get(pk=category.pk).paused

    url = reverse("admin:governance_category_resume", args=[category.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"post": "yes", "reason": "Fixed the prompt"})

    assert response.status_code == 302
    category.refresh_from_db()
    assert not category.paused and category.resumed_at is not None
    assert AuditEvent.objects.filter(kind=AuditKind.CATEGORY_RESUMED, payload__reason="Fixed the prompt").exists()


# --- Product owners: object grants open exactly their categories ---


def test_product_owner_edits_the_policy_of_a_granted_category_but_not_another(staff: Any) -> None:
    owner = staff("owner", "Product Owner")
    mine, other = make_category("refunds"), make_category("triage")
    assign_perm("governance.change_category", owner, mine)
    client = login(owner)

    listing = client.get(changelist_url(Category))
    assert listing.status_code == 200
    assert [c.slug for c in listing.context["cl"].result_list] == ["refunds"]

    assert client.get(change_url(mine)).status_code == 200
    response = client.post(change_url(mine), policy_form(mine.policy, reason="Owner's call", audit_rate=0.05))
    assert response.status_code == 302
    assert Policy.objects.get(category=mine).version == 2

    assert client.get(change_url(other)).status_code == 404
    assert client.post(change_url(other), policy_form(other.policy, reason="No", audit_rate=0.05)).status_code == 404
    assert client.get(reverse("admin:governance_policy_history", args=[other.policy.pk])).status_code == 404
    assert Policy.objects.get(category=other).version == 1


def test_category_seen_through_a_queue_grant_is_read_only(staff: Any) -> None:
    owner = staff("owner", "Product Owner")
    category = make_category("refunds")
    grant_queue(owner, Queue.objects.get(slug="refunds-full"))
    client = login(owner)

    page = client.get(change_url(category))
    assert page.status_code == 200
    assert 'name="auto_threshold"' not in page.content.decode()
    assert (
        client.post(change_url(category), policy_form(category.policy, reason="x", audit_rate=0.1)).status_code == 403
    )
    pause = reverse("admin:governance_category_pause", args=[category.pk])
    assert client.post(pause, {"post": "yes", "reason": "x"}).status_code == 403
    assert Policy.objects.get(category=category).version == 1
    assert not Category.objects.get(pk=category.pk).paused


def test_object_permissions_are_managed_by_superusers_only(superuser: User, staff: Any) -> None:
    owner = staff("owner", "Product Owner")
    category = make_category("refunds")
    assign_perm("governance.change_category", owner, category)
    queue = Queue.objects.get(slug="refunds-quick")

    assert login(superuser).get(reverse("admin:cases_queue_permissions", args=[queue.pk])).status_code == 200
    assert login(superuser).get(reverse("admin:governance_category_permissions", args=[category.pk])).status_code == 200
    page = login(owner).get(reverse("admin:governance_category_permissions", args=[category.pk]))
    assert page.status_code == 302 and page["Location"] == reverse("admin:index")
    assert "Object permissions" not in login(owner).get(change_url(category)).content.decode()


def test_work_queue_granted_on_the_object_permissions_page_opens_that_queue(superuser: User, staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    case = make_case(make_category("refunds"), confidence=0.5)
    queue = Queue.objects.get(slug="refunds-full")
    url = reverse("admin:cases_queue_permissions_manage_user", args=[queue.pk, reviewer.pk])

    assert login(superuser).post(url, {"permissions": ["work_queue"]}).status_code == 302

    assert reviewer.has_perm("cases.work_queue", queue)
    assert login(reviewer).get(change_url(case)).status_code == 200


def test_product_owner_may_edit_a_category_they_created_in_the_admin(staff: Any) -> None:
    owner = staff("owner", "Product Owner")
    client = login(owner)
    data = {
        "slug": "leads",
        "name": "Leads",
        "description": "",
        "pattern": "teacher",
        "stage": "shadow",
        "consequence": "low",
        "pii_fields": "",
        "retention_days": "90",
        "baseline_minutes_per_case": "2",
        **policy_form(Policy()),
    }

    assert client.post(reverse("admin:governance_category_add"), data).status_code == 302
    category = Category.objects.get(slug="leads")
    response = client.post(change_url(category), policy_form(category.policy, reason="Start small", auto_share=10))
    assert response.status_code == 302
    assert Policy.objects.get(category=category).version == 2


# --- Model versions: promoted by the service, never by editing the status ---


def test_model_version_promotion_needs_a_reason_and_goes_through_the_service(superuser: User) -> None:
    category = make_category("refunds", model_status=ModelStatus.SHADOW)
    version = model_version(category)
    client = login(superuser)
    post = {"action": "promote_selected", "_selected_action": [version.pk], "post": "yes", "status": "canary"}

    assert client.post(changelist_url(ModelVersion), {**post, "reason": ""}).status_code == 200
    assert ModelVersion.objects.get(pk=version.pk).status == ModelStatus.SHADOW

    assert client.post(changelist_url(ModelVersion), {**post, "reason": "Shadow agreement 97%"}).status_code == 302
    version.refresh_from_db()
    assert version.status == ModelStatus.CANARY and version.approved_by == superuser
    assert AuditEvent.objects.filter(
        kind=AuditKind.MODEL_STATUS_CHANGED, payload__to="canary", payload__reason="Shadow agreement 97%"
    ).exists()


def test_model_version_status_cannot_be_edited_on_its_page(superuser: User) -> None:
    version = model_version(make_category("refunds", model_status=ModelStatus.SHADOW))
    client = login(superuser)

    page = client.get(change_url(version))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    assert client.post(change_url(version), {"status": "active"}).status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).status == ModelStatus.SHADOW


def test_model_version_registered_in_admin_goes_through_the_service(superuser: User) -> None:
    category = make_category("refunds")
    data = {"category": category.pk, "name": "clf", "version": "2", "notes": "", "metrics": "{}", "reason": "Trained"}

    assert login(superuser).post(reverse("admin:governance_modelversion_add"), data).status_code == 302

    assert ModelVersion.objects.get(category=category, name="clf", version="2").status == ModelStatus.REGISTERED
    assert AuditEvent.objects.filter(kind=AuditKind.MODEL_REGISTERED, payload__model_version="clf@2").exists()


# --- The audit log: read-only for everyone ---


def test_audit_events_cannot_be_added_changed_or_deleted_even_by_a_superuser(superuser: User) -> None:
    make_category("refunds")
    event = AuditEvent.objects.first()
    assert event is not None
    client = login(superuser)
    before = list(AuditEvent.objects.values_list("pk", "hash"))

    assert client.get(reverse("admin:governance_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:governance_auditevent_add"), {"kind": "case.routed"}).status_code == 403
    assert client.get(change_url(event)).status_code == 200  # a read-only view
    assert client.post(change_url(event), {"kind": "case.routed", "payload": "{}"}).status_code == 403
    delete_url = reverse("admin:governance_auditevent_delete", args=[event.pk])
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    client.post(
        changelist_url(AuditEvent), {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )

    assert list(AuditEvent.objects.values_list("pk", "hash")) == before


def test_audit_log_shows_only_events_of_visible_categories(staff: Any) -> None:
    steward = staff("curator", "Data Curator")  # role permission to read the log; global view of categories
    owner = staff("owner", "Product Owner")
    owner.user_permissions.add(*_perms("governance.view_auditevent"))
    mine = make_category("refunds")
    make_category("triage")
    assign_perm("governance.change_category", owner, mine)

    seen_by_owner = login(owner).get(changelist_url(AuditEvent)).context["cl"].result_list
    seen_by_steward = login(steward).get(changelist_url(AuditEvent)).context["cl"].result_list

    assert {e.category_slug for e in seen_by_owner} == {"refunds"}
    assert {e.category_slug for e in seen_by_steward} == {"refunds", "triage"}


def test_audit_log_of_a_queue_worker_shows_only_their_cases_and_category_events(staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    reviewer.user_permissions.add(*_perms("governance.view_auditevent"))
    category = make_category("refunds")
    mine, other = make_case(category, confidence=0.8), make_case(category, confidence=0.5)
    grant_queue(reviewer, Queue.objects.get(slug="refunds-quick"))

    seen = login(reviewer).get(changelist_url(AuditEvent)).context["cl"].result_list

    assert {e.case_id for e in seen if e.case_id is not None} == {mine.pk}
    assert other.pk not in {e.case_id for e in seen}
    assert AuditKind.CATEGORY_CREATED in {e.kind for e in seen}


# --- Cases: read-only, narrowed to what the user may see, a fixed number of queries per page ---


def _case_list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(changelist_url(Case))
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["superuser", "reviewer"])
def test_case_list_costs_the_same_queries_for_5_and_50_cases(who: str, superuser: User, staff: Any) -> None:
    category = make_category("refunds")
    if who == "superuser":
        user = superuser
    else:
        user = staff("rev", "Reviewer")
        grant_queue(user, Queue.objects.get(slug="refunds-full"))
    client = login(user)
    for _ in range(5):
        make_case(category)
    _case_list_queries(client)  # warm the per-process caches (content types)
    with_5 = _case_list_queries(client)

    for _ in range(45):
        make_case(category)
    response = client.get(changelist_url(Case))
    assert len(response.context["cl"].result_list) == 50
    assert _case_list_queries(client) == with_5


def test_user_without_grants_sees_no_cases_and_a_404_on_a_case(staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    case = make_case(make_category("refunds"), external_id="secret-order-991")
    client = login(reviewer)

    listing = client.get(changelist_url(Case))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []
    assert "secret-order-991" not in listing.content.decode()

    page = client.get(change_url(case))
    assert page.status_code == 404
    assert "secret-order-991" not in page.content.decode()
    assert client.get(reverse("admin:cases_case_history", args=[case.pk])).status_code == 404


def test_reviewer_sees_only_the_cases_of_granted_queues(staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    category = make_category("refunds")
    full_case = make_case(category, confidence=0.5)  # full review
    quick_case = make_case(category, confidence=0.8)  # quick review
    grant_queue(reviewer, Queue.objects.get(slug="refunds-quick"))
    client = login(reviewer)

    listing = client.get(changelist_url(Case))

    assert [c.pk for c in listing.context["cl"].result_list] == [quick_case.pk]
    assert client.get(change_url(quick_case)).status_code == 200
    assert client.get(change_url(full_case)).status_code == 404
    filters = listing.content.decode()
    assert "refunds-quick" in filters and "refunds-full" not in filters


def test_filters_offer_only_visible_categories(staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    make_category("refunds")
    make_category("hidden-category")
    grant_queue(reviewer, Queue.objects.get(slug="refunds-quick"))

    body = login(reviewer).get(changelist_url(Case)).content.decode()

    assert "refunds" in body and "hidden-category" not in body


def test_case_page_is_read_only_and_shows_routing_and_its_audit_events(superuser: User) -> None:
    case = make_case(make_category("refunds"), external_id="ord-1", confidence=0.5)
    client = login(superuser)

    page = client.get(change_url(case))

    assert page.status_code == 200
    body = page.content.decode()
    assert case.route_reasons[0].replace("'", "&#x27;") in body
    assert "case.routed" in body
    assert AuditEvent.objects.get(case_id=case.pk).hash[:12] in body
    assert 'name="_save"' not in body
    assert client.post(change_url(case), {"status": "approved"}).status_code == 403
    assert client.get(reverse("admin:cases_case_add")).status_code == 403
    assert client.get(reverse("admin:cases_case_delete", args=[case.pk])).status_code == 403
    assert Case.objects.get(pk=case.pk).status == "queued"


def test_decisions_are_listed_only_where_their_case_is_visible(staff: Any) -> None:
    reviewer = staff("rev", "Reviewer")
    category = make_category("refunds")
    seen, unseen = make_case(category, confidence=0.8), make_case(category, confidence=0.5)
    for case in (seen, unseen):
        Decision.objects.create(
            case=case, action="approve", output_before=case.output, model_version="model@1", policy_version=1
        )
    grant_queue(reviewer, Queue.objects.get(slug="refunds-quick"))

    listing = login(reviewer).get(changelist_url(Decision))

    assert [d.case_id for d in listing.context["cl"].result_list] == [seen.pk]


# --- Every page renders ---


def test_every_admin_page_renders_for_a_superuser(superuser: User) -> None:
    category = make_category("refunds")
    case = make_case(category)
    decision = Decision.objects.create(
        case=case,
        actor=superuser,
        action="approve",
        output_before=case.output,
        model_version="model@1",
        policy_version=1,
    )
    queue = Queue.objects.get(slug="refunds-quick")
    client = login(superuser)
    urls = [
        reverse("admin:index"),
        *[changelist_url(m) for m in (Category, Policy, ModelVersion, AuditEvent, Queue, Case, Decision)],
        reverse("admin:governance_category_add"),
        reverse("admin:governance_modelversion_add"),
        *[change_url(o) for o in (category, category.policy, model_version(category), queue, case, decision)],
        change_url(AuditEvent.objects.first()),
        reverse("admin:governance_category_history", args=[category.pk]),
        reverse("admin:governance_policy_history", args=[category.policy.pk]),
        reverse("admin:governance_modelversion_history", args=[model_version(category).pk]),
        reverse("admin:cases_queue_history", args=[queue.pk]),
        reverse("admin:cases_case_history", args=[case.pk]),
        reverse("admin:governance_category_pause", args=[category.pk]),
        reverse("admin:governance_modelversion_promote", args=[model_version(category).pk]),
        reverse("admin:cases_queue_permissions", args=[queue.pk]),
    ]

    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "HITL Desk" in response.content.decode(), url


def _perms(*dotted: str) -> list[Any]:
    result = []
    for name in dotted:
        app_label, codename = name.split(".")
        result.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return result
