"""Every human verdict becomes a label in the decision's own transaction (DESIGN.md, Feedback loop), the last human
word on a case wins, and only certified reviewers' labels pass the gate."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from cases.models import Case, Queue
from governance.models import Category
from reviews import services
from reviews.models import Decision, Label
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("lab", auto_threshold=0.9, review_threshold=0.6, audit_rate=1.0)


@pytest.fixture
def rev(make_user: Any, category: Category) -> User:
    user: User = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(user, queue)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def curator(make_user: Any) -> User:
    user: User = make_user("curator", roles=["Data Curator"])
    return user


def quick_case(category: Category) -> Case:
    return make_case(category, confidence=0.8, output={"label": "shipping"})


def labels_of(case: Case) -> list[tuple[str, str, bool]]:
    return [(lab.source, lab.label, lab.superseded) for lab in Label.objects.filter(case=case).order_by("id")]


def test_an_approve_labels_the_models_answer(category: Category, rev: User) -> None:
    case = quick_case(category)
    decision = services.decide(case=case, user=rev, action="approve")
    label = Label.objects.get(decision=decision)
    assert (label.source, label.label, label.model_label, label.reviewer) == ("approve", "shipping", "shipping", rev)
    assert (label.category, label.model_version, label.policy_version) == (category, "model@1", 1)
    assert label.output == {"label": "shipping"}
    assert (label.certified, label.passed_gate, label.superseded) == (False, False, False)


def test_a_correction_labels_the_reviewers_answer(category: Category, rev: User) -> None:
    case = quick_case(category)
    services.decide(case=case, user=rev, action="correct", output={"label": "billing", "text": "Sorry"})
    label = Label.objects.get(case=case)
    assert (label.source, label.label, label.model_label) == ("correct", "billing", "shipping")
    assert label.output == {"label": "billing", "text": "Sorry"}


def test_a_bare_reject_labels_nothing(category: Category, rev: User) -> None:
    case = quick_case(category)
    services.decide(case=case, user=rev, action="reject", reason_code="other")
    assert not Label.objects.filter(case=case).exists()


def test_an_escalation_labels_nothing_until_its_final_word(category: Category, rev: User) -> None:
    case = quick_case(category)
    services.decide(case=case, user=rev, action="escalate", reason_code="high_risk")
    assert labels_of(case) == []
    services.decide(case=case, user=rev, action="correct", output={"label": "fraud"})
    assert labels_of(case) == [("escalation", "fraud", False)]


def test_audits_label_what_the_auditor_found(category: Category, rev: User) -> None:
    confirmed = make_case(category, confidence=0.95, output={"label": "shipping"})
    flagged = make_case(category, confidence=0.95, output={"label": "shipping"})
    assert confirmed.audit_status == "pending"
    services.decide(case=confirmed, user=rev, action="confirm")
    services.decide(case=flagged, user=rev, action="flag", output={"label": "refund"}, reason_code="wrong_label")
    assert labels_of(confirmed) == [("audit_confirm", "shipping", False)]
    assert labels_of(flagged) == [("audit_flag", "refund", False)]


def test_a_shadow_review_labels_the_reviewers_own_answer(make_user: Any) -> None:
    category = make_category("blind", stage="shadow")
    reviewer: User = make_user("blind-rev", roles=["Reviewer"])
    grant_queue(reviewer, Queue.objects.get(slug="blind-full"))
    case = make_case(category, confidence=0.9, output={"label": "shipping"})
    services.decide(case=case, user=reviewer, action="approve", output={"label": "shipping"})
    other = make_case(category, confidence=0.9, output={"label": "shipping"})
    services.decide(case=other, user=reviewer, action="correct", output={"label": "billing"})
    assert labels_of(case) == [("shadow", "shipping", False)]
    assert labels_of(other) == [("shadow", "billing", False)]


def test_a_later_human_word_supersedes_the_earlier_label(category: Category, rev: User) -> None:
    case = make_case(category, confidence=0.95, output={"label": "shipping"})  # auto, drawn for audit
    services.decide(case=case, user=rev, action="confirm")
    first = Label.objects.get(case=case)
    # A second verdict on the same case (what adjudication will do): the newest stands, the older is kept.
    second = services.labels.record_label(
        decision=Decision.objects.create(
            case=case, actor=rev, action="correct", output_before=case.output, output_after={"label": "refund"},
            model_version="model@1", policy_version=1,
        ),
        case=case,
        final_word=True,
    )  # fmt: skip
    first.refresh_from_db()
    assert first.superseded is True
    assert second is not None and second.superseded is False
    assert list(Label.objects.filter(case=case).current()) == [second]


def test_a_certified_reviewers_labels_pass_the_gate_until_revoked(category: Category, rev: User, curator: User) -> None:
    before = quick_case(category)
    services.decide(case=before, user=rev, action="approve")
    services.certify(curator=curator, reviewer=rev, category=category, reason="Passed the calibration set")
    during = quick_case(category)
    services.decide(case=during, user=rev, action="approve")
    services.revoke(curator=curator, reviewer=rev, category=category, reason="Too many misses in October")
    after = quick_case(category)
    services.decide(case=after, user=rev, action="approve")

    gate = {lab.case_id: (lab.certified, lab.passed_gate) for lab in Label.objects.all()}
    assert gate == {before.pk: (False, False), during.pk: (True, True), after.pk: (False, False)}
    certification = rev.certifications.get(category=category)
    reasons = [h.history_change_reason for h in certification.history.order_by("history_date")]
    assert reasons == ["Certified: Passed the calibration set", "Revoked: Too many misses in October"]
    assert {h.history_user for h in certification.history.all()} == {curator}


def test_only_data_curators_certify_and_always_with_a_reason(category: Category, rev: User, curator: User) -> None:
    with pytest.raises(PermissionDenied):
        services.certify(curator=rev, reviewer=rev, category=category, reason="I am great")
    with pytest.raises(ValidationError) as refused:
        services.certify(curator=curator, reviewer=rev, category=category, reason="  ")
    assert "reason" in refused.value.message_dict
    services.certify(curator=curator, reviewer=rev, category=category, reason="ok")
    with pytest.raises(ValidationError):
        services.certify(curator=curator, reviewer=rev, category=category, reason="again")
    assert not services.is_certified(rev, make_category("other"))


def test_the_backfill_labels_old_decisions_as_live_intake_would(category: Category, rev: User) -> None:
    approved, corrected, rejected, escalated = (quick_case(category) for _ in range(4))
    services.decide(case=approved, user=rev, action="approve")
    services.decide(case=corrected, user=rev, action="correct", output={"label": "billing"})
    services.decide(case=rejected, user=rev, action="reject", reason_code="other")
    services.decide(case=escalated, user=rev, action="escalate", reason_code="high_risk")
    services.decide(case=escalated, user=rev, action="approve")
    live = sorted(Label.objects.values_list("decision_id", "source", "label", "superseded", "certified"))
    Label.objects.all().delete()  # as before labels existed

    importlib.import_module("reviews.migrations.0007_backfill_labels").backfill(apps, None)

    assert sorted(Label.objects.values_list("decision_id", "source", "label", "superseded", "certified")) == live
    assert len(live) == 3
