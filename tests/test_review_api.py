"""The human side over the API: claim, release, decide, escalate, reassign, claim-next, batch and audits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from governance.models import AuditEvent, Category
from reviews.models import Decision
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def category():
    return make_category("cat")


def queue(kind: str) -> Queue:
    return Queue.objects.get(slug=f"cat-{kind}")


@pytest.fixture
def reviewer(make_user, category):
    user = make_user("rev", roles=["Reviewer"])
    grant_queue(user, queue("quick"))
    grant_queue(user, queue("full"))
    return user


@pytest.fixture
def manager(make_user, category):
    user = make_user("boss", roles=["Escalation Manager"])
    grant_queue(user, queue("escalation"))
    grant_queue(user, queue("expert"))
    return user


def make_category_cached():
    return Category.objects.get(slug="cat")


def quick_case(**kw):
    """A case of category `cat` routed to its quick queue (confidence between the thresholds)."""
    return make_case(make_category_cached(), confidence=0.8, **kw)


def post(client, url, data=None):
    return client.post(url, data or {}, format="json")


# --- claim and release ---


def test_claim_holds_the_case_for_15_minutes(api, reviewer):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/claim/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "claimed"
    assert response.json()["claimed_by"] == "rev"
    case.refresh_from_db()
    remaining = case.claimed_until - timezone.now()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)
    assert case.history.first().history_change_reason == "Claimed"


def test_a_case_claimed_by_another_is_refused_with_409_and_nothing_changes(api, reviewer, make_user):
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, queue("quick"))
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/claim/")
    for url, data in (
        (f"/api/v1/cases/{case.pk}/claim/", None),
        (f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"}),
        (f"/api/v1/cases/{case.pk}/release/", None),
    ):
        response = post(api(other), url, data)
        assert response.status_code == 409, (url, response.content)
        assert "detail" in response.json()
    case.refresh_from_db()
    assert case.claimed_by == reviewer
    assert not Decision.objects.exists()


def test_an_expired_claim_can_be_taken_over(api, reviewer, make_user):
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, queue("quick"))
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/claim/")
    Case.objects.filter(pk=case.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert post(api(other), f"/api/v1/cases/{case.pk}/claim/").json()["claimed_by"] == "other"


def test_release_gives_the_case_back_to_its_queue(api, reviewer):
    case = quick_case()
    client = api(reviewer)
    post(client, f"/api/v1/cases/{case.pk}/claim/")
    response = post(client, f"/api/v1/cases/{case.pk}/release/")
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["claimed_by"] is None
    assert post(client, f"/api/v1/cases/{case.pk}/release/").status_code == 409


# --- decisions ---


def test_approve_makes_the_models_output_final(api, reviewer):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "approve", "seconds_spent": 12})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "approved"
    assert data["final_output"] == case.output
    assert data["decisions"][0]["action"] == "approve"
    assert data["decisions"][0]["seconds_spent"] == 12
    decision = Decision.objects.get()
    assert (decision.actor, decision.model_version, decision.policy_version) == (reviewer, "model@1", 1)
    event = AuditEvent.objects.get(kind="case.decided")
    assert event.case_id == case.pk and event.actor_username == "rev"
    assert Case.objects.get(pk=case.pk).history.first().history_user == reviewer


def test_correct_stores_the_reviewers_output_as_final(api, reviewer):
    case = quick_case()
    corrected = {"label": "billing", "text": "We refunded the double charge."}
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "correct", "output": corrected})
    assert response.json()["status"] == "corrected"
    assert response.json()["final_output"] == corrected
    decision = Decision.objects.get()
    assert decision.output_before == case.output and decision.output_after == corrected


def test_correct_without_an_output_is_refused(api, reviewer):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "correct"})
    assert response.status_code == 400
    assert "output" in response.json()
    assert Case.objects.get(pk=case.pk).status == "queued"


@pytest.mark.parametrize("action", ["reject", "escalate"])
def test_reject_and_escalate_need_a_reason_code(api, reviewer, action):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": action})
    assert response.status_code == 400
    assert "reason_code" in response.json()
    assert not Decision.objects.exists()


def test_reject_with_an_ordinary_reason_is_final(api, reviewer):
    case = quick_case()
    response = post(
        api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "reject", "reason_code": "wrong_label"}
    )
    assert response.json()["status"] == "rejected"
    assert response.json()["final_output"] is None


@pytest.mark.parametrize(
    ("action", "reason", "target"),
    [
        ("escalate", "policy_legal", "escalation"),
        ("escalate", "high_risk", "escalation"),
        ("escalate", "needs_expert", "expert"),
        ("escalate", "other", "escalation"),
        ("reject", "policy_legal", "escalation"),
        ("reject", "needs_expert", "expert"),
    ],
)
def test_escalations_go_to_the_queue_their_reason_names(api, reviewer, action, reason, target):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": action, "reason_code": reason})
    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert case.status == "escalated"
    assert case.queue.slug == f"cat-{target}"
    expected_sla = timedelta(hours=1) if target == "escalation" else timedelta(hours=8)
    assert abs((case.due_at - timezone.now()) - expected_sla) < timedelta(minutes=1)
    assert AuditEvent.objects.filter(kind="case.escalated", case_id=case.pk).count() == 1


def test_in_the_escalation_queue_every_decision_is_final(api, reviewer, manager):
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "policy_legal"})
    boss = api(manager)
    response = post(boss, f"/api/v1/cases/{case.pk}/decide/", {"action": "reject", "reason_code": "policy_legal"})
    assert response.json()["status"] == "rejected"
    assert [d["action"] for d in response.json()["decisions"]] == ["escalate", "reject"]


def test_escalating_within_the_escalation_queue_needs_another_queue(api, reviewer, manager):
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "high_risk"})
    boss = api(manager)
    refused = post(boss, f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "high_risk"})
    assert refused.status_code == 400
    assert "expert" in refused.json()["reason_code"][0]
    moved = post(boss, f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "needs_expert"})
    assert moved.status_code == 200
    assert Case.objects.get(pk=case.pk).queue.slug == "cat-expert"


def test_a_decision_on_a_final_case_is_refused_with_409(api, reviewer):
    case = quick_case()
    client = api(reviewer)
    post(client, f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"})
    response = post(client, f"/api/v1/cases/{case.pk}/decide/", {"action": "reject", "reason_code": "other"})
    assert response.status_code == 409
    assert Case.objects.get(pk=case.pk).status == "approved"
    assert Decision.objects.count() == 1


def test_an_auto_approved_case_cannot_be_decided(api, superuser):
    case = make_case(make_category_cached(), confidence=0.99)
    assert case.status == "auto_approved"
    assert post(api(superuser), f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"}).status_code == 409


# --- shadow: blind review ---


def test_shadow_output_is_hidden_until_decided_and_agreement_is_recorded(api, make_user):
    shadow = make_category("blind", stage="shadow")
    user = make_user("rev2", roles=["Reviewer"])
    grant_queue(user, Queue.objects.get(slug="blind-full"))
    client = api(user)
    agree = make_case(shadow, output={"label": "refund"}, confidence=0.9)
    disagree = make_case(shadow, output={"label": "refund"}, confidence=0.9)
    assert client.get(f"/api/v1/cases/{agree.pk}/").json()["output"] is None
    assert client.get(f"/api/v1/cases/{agree.pk}/").json()["output_hidden"] is True
    audit_payloads = [e["payload"] for e in client.get(f"/api/v1/audit/?case={agree.pk}").json()["results"]]
    assert "refund" not in str(audit_payloads)
    first = post(client, f"/api/v1/cases/{agree.pk}/decide/", {"action": "approve", "output": {"label": "refund"}})
    second = post(client, f"/api/v1/cases/{disagree.pk}/decide/", {"action": "approve", "output": {"label": "deny"}})
    assert first.json()["status"] == "approved" and first.json()["output"] == {"label": "refund"}
    assert second.json()["status"] == "corrected" and second.json()["final_output"] == {"label": "deny"}
    assert [d.action for d in Decision.objects.order_by("id")] == ["approve", "correct"]


def test_a_shadow_decision_needs_the_reviewers_own_output(api, make_user):
    shadow = make_category("blind", stage="shadow")
    user = make_user("rev2", roles=["Reviewer"])
    grant_queue(user, Queue.objects.get(slug="blind-full"))
    case = make_case(shadow, confidence=0.9)
    assert post(api(user), f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"}).status_code == 400


# --- claim next ---


def test_claim_next_takes_urgent_first_then_the_earliest_due(api, reviewer):
    normal_early = quick_case()
    urgent = quick_case(priority="urgent")
    normal_late = quick_case()
    Case.objects.filter(pk=normal_early.pk).update(due_at=timezone.now() + timedelta(hours=1))
    Case.objects.filter(pk=normal_late.pk).update(due_at=timezone.now() + timedelta(hours=2))
    client = api(reviewer)
    order = []
    for _ in range(3):
        order.append(post(client, "/api/v1/queues/cat-quick/next/").json()["id"])
        post(client, f"/api/v1/cases/{order[-1]}/decide/", {"action": "approve"})  # done: on to the next
    assert order == [urgent.pk, normal_early.pk, normal_late.pk]
    empty = post(client, "/api/v1/queues/cat-quick/next/")
    assert empty.status_code == 204


def test_claim_next_skips_cases_held_by_others(api, reviewer, make_user):
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, queue("quick"))
    first, second = quick_case(), quick_case()
    assert post(api(other), "/api/v1/queues/cat-quick/next/").json()["id"] == first.pk
    assert post(api(reviewer), "/api/v1/queues/cat-quick/next/").json()["id"] == second.pk


# --- batch approval ---


def test_batch_approve_records_one_decision_per_case_with_one_batch_id(api, reviewer, make_user):
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, queue("quick"))
    a, b, held, done = quick_case(), quick_case(), quick_case(), quick_case()
    post(api(other), f"/api/v1/cases/{held.pk}/claim/")
    post(api(reviewer), f"/api/v1/cases/{done.pk}/decide/", {"action": "approve"})
    full_case = make_case(make_category_cached(), confidence=0.3)
    ids = [a.pk, b.pk, held.pk, done.pk, full_case.pk, 999999]
    response = post(api(reviewer), "/api/v1/queues/cat-quick/batch-approve/", {"cases": ids})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["approved"] == [a.pk, b.pk]
    skipped = {s["id"]: s["reason"] for s in data["skipped"]}
    assert set(skipped) == {held.pk, done.pk, full_case.pk, 999999}
    assert "claimed by other" in skipped[held.pk]
    assert "already decided" in skipped[done.pk]
    batch_decisions = Decision.objects.filter(batch_id=data["batch_id"])
    assert sorted(batch_decisions.values_list("case_id", flat=True)) == [a.pk, b.pk]
    assert Case.objects.get(pk=held.pk).status == "claimed"


def test_batch_approval_is_refused_where_the_queue_does_not_allow_it(api, reviewer):
    case = make_case(make_category_cached(), confidence=0.3)
    response = post(api(reviewer), "/api/v1/queues/cat-full/batch-approve/", {"cases": [case.pk]})
    assert response.status_code == 409
    assert not Decision.objects.exists()


# --- audits of auto-approved cases ---


def test_an_auto_case_drawn_for_audit_waits_in_the_audit_queue_and_can_be_flagged(api, make_user):
    audited = make_category("aud", audit_rate=1.0)
    auditor = make_user("auditor", roles=["Reviewer"])
    grant_queue(auditor, Queue.objects.get(slug="aud-audit"))
    case = make_case(audited, confidence=0.99)
    assert (case.status, case.audit_status, case.queue.slug) == ("auto_approved", "pending", "aud-audit")
    client = api(auditor)
    assert post(client, f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"}).status_code == 400
    refused = post(client, f"/api/v1/cases/{case.pk}/decide/", {"action": "flag", "reason_code": "wrong_label"})
    assert refused.status_code == 400 and "output" in refused.json()
    response = post(
        client,
        f"/api/v1/cases/{case.pk}/decide/",
        {"action": "flag", "reason_code": "wrong_label", "output": {"label": "billing"}},
    )
    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert (case.status, case.audit_status) == ("auto_approved", "flagged")
    assert AuditEvent.objects.filter(kind="case.audited", case_id=case.pk).exists()
    assert post(client, "/api/v1/queues/aud-audit/next/").status_code == 204


def test_an_auditor_confirms_an_auto_case(api, make_user):
    audited = make_category("aud", audit_rate=1.0)
    auditor = make_user("auditor", roles=["Reviewer"])
    grant_queue(auditor, Queue.objects.get(slug="aud-audit"))
    case = make_case(audited, confidence=0.99)
    claimed = post(api(auditor), "/api/v1/queues/aud-audit/next/").json()
    assert claimed["id"] == case.pk and claimed["claimed_by"] == "auditor"
    assert post(api(auditor), f"/api/v1/cases/{case.pk}/decide/", {"action": "confirm"}).status_code == 200
    assert Case.objects.get(pk=case.pk).audit_status == "confirmed"


# --- reassign ---


def test_an_escalation_manager_reassigns_a_case_to_a_queue_and_a_person(api, reviewer, manager, make_user):
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "high_risk"})
    expert = make_user("expert", roles=["Reviewer"])
    grant_queue(expert, queue("expert"))
    response = post(
        api(manager),
        f"/api/v1/cases/{case.pk}/reassign/",
        {"queue": "cat-expert", "assignee": "expert", "reason": "needs tax knowledge"},
    )
    assert response.status_code == 200, response.content
    case.refresh_from_db()
    assert (case.queue.slug, case.claimed_by, case.status) == ("cat-expert", expert, "claimed")
    assert AuditEvent.objects.get(kind="case.reassigned").payload["reason"] == "needs tax knowledge"


def test_a_reviewer_may_not_reassign(api, reviewer):
    case = quick_case()
    response = post(api(reviewer), f"/api/v1/cases/{case.pk}/reassign/", {"queue": "cat-full", "reason": "x"})
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).queue.slug == "cat-quick"


def test_reassign_to_someone_who_cannot_work_the_queue_is_refused(api, reviewer, manager):
    case = quick_case()
    post(api(reviewer), f"/api/v1/cases/{case.pk}/decide/", {"action": "escalate", "reason_code": "high_risk"})
    response = post(api(manager), f"/api/v1/cases/{case.pk}/reassign/", {"assignee": "rev", "reason": "x"})
    assert response.status_code == 400
    assert "assignee" in response.json()


# --- the grant boundary: 404 for what is not yours ---


@pytest.mark.parametrize("verb", ["claim", "release", "decide", "reassign"])
def test_case_verbs_outside_the_reviewers_queues_are_404(api, reviewer, verb):
    other_cat = make_category("other")
    outside = make_case(other_cat, confidence=0.8)
    response = post(api(reviewer), f"/api/v1/cases/{outside.pk}/{verb}/", {"action": "approve", "reason": "x"})
    assert response.status_code == 404
    outside.refresh_from_db()
    assert outside.status == "queued" and outside.claimed_by is None


def test_queue_verbs_outside_the_reviewers_queues_are_404(api, reviewer):
    make_category("other")
    client = api(reviewer)
    assert post(client, "/api/v1/queues/other-quick/next/").status_code == 404
    assert post(client, "/api/v1/queues/other-quick/batch-approve/", {"cases": [1]}).status_code == 404
    assert post(client, "/api/v1/queues/cat-quick/next/").status_code == 204


def test_a_product_owner_who_sees_a_case_but_does_not_work_its_queue_gets_403(api, make_user):
    case = quick_case()
    owner = make_user("po", roles=["Product Owner"])
    assign_perm("governance.change_category", owner, case.category)
    response = post(api(owner), f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"})
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).status == "queued"


def test_anonymous_requests_are_401(api):
    case = quick_case()
    assert post(api(None), f"/api/v1/cases/{case.pk}/claim/").status_code == 401


def test_batch_time_is_shared_by_the_cases_actually_approved(api, reviewer, make_user):
    other = make_user("other", roles=["Reviewer"])
    grant_queue(other, queue("quick"))
    a, b, held = quick_case(), quick_case(), quick_case()
    post(api(other), f"/api/v1/cases/{held.pk}/claim/")
    response = post(
        api(reviewer), "/api/v1/queues/cat-quick/batch-approve/", {"cases": [a.pk, b.pk, held.pk], "seconds_spent": 60}
    )
    assert response.json()["approved"] == [a.pk, b.pk]
    assert list(Decision.objects.order_by("case_id").values_list("seconds_spent", flat=True)) == [30, 30]
