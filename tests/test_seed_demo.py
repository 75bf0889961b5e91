"""seed_demo: the demo's people, categories, grants, model versions and cases, made once however often it runs.

Most tests seed without a history (`--days 0`), which is fast; the history's own tests (test_seed_history.py) seed
one once for the whole module.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from guardian.models import UserObjectPermission
from rest_framework.authtoken.models import Token

from cases.models import Case, Queue, SlaBreach
from governance.models import AuditEvent, Category, ModelVersion, Notification, Policy
from governance.permissions import ROLE_NAMES
from metrics.models import Alert, AlertRule, MetricSnapshot
from reviews.models import Decision

pytestmark = pytest.mark.django_db

CASES = 40


def seed(cases: int = CASES, days: int = 0) -> str:
    out = StringIO()
    call_command("seed_demo", "--cases", str(cases), "--days", str(days), stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    """Every kind of row the seed writes, counted."""
    return {
        "users": User.objects.count(),
        "tokens": Token.objects.count(),
        "categories": Category.objects.count(),
        "policies": Policy.history.count(),  # type: ignore[attr-defined]
        "alert_rules": AlertRule.history.count(),  # type: ignore[attr-defined]
        "queues": Queue.objects.count(),
        "model_versions": ModelVersion.objects.count(),
        "cases": Case.objects.count(),
        "case_history": Case.history.count(),  # type: ignore[attr-defined]
        "decisions": Decision.objects.count(),
        "breaches": SlaBreach.objects.count(),
        "snapshots": MetricSnapshot.objects.count(),
        "alerts": Alert.objects.count(),
        "notifications": Notification.objects.count(),
        "grants": UserObjectPermission.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def test_a_second_run_adds_nothing() -> None:
    seed()
    first = counts()
    output = seed()
    assert counts() == first
    assert first["cases"] == CASES
    assert "0 cases" in output


def test_it_rejects_a_history_longer_than_the_longest_window() -> None:
    with pytest.raises(CommandError, match="--days"):
        seed(days=91)


def test_a_larger_run_adds_only_the_new_cases() -> None:
    seed(20)
    seed(CASES)
    assert Case.objects.count() == CASES


def test_it_creates_the_three_example_categories_with_their_policies() -> None:
    seed()
    expected = {
        "support-triage": ("exception", 0.90, 0.60),
        "refund-requests": ("validator", 0.95, 0.70),
        "lead-qualification": ("exception", 0.85, 0.60),
    }
    for slug, (pattern, auto, review) in expected.items():
        category = Category.objects.get(slug=slug)
        policy = Policy.objects.get(category=category)
        assert (category.pattern, policy.auto_threshold, policy.review_threshold) == (pattern, auto, review)
        assert Queue.objects.filter(category=category).count() == 5
        assert ModelVersion.objects.filter(category=category, status="active").count() == 1
    refunds = Policy.objects.get(category__slug="refund-requests")
    assert refunds.high_value_amount == 500
    assert refunds.sensitive_labels == ["legal"]


def test_role_users_are_in_their_groups() -> None:
    seed()
    expected = {
        "reviewer": "Reviewer",
        "reviewer-lea": "Reviewer",
        "reviewer-sam": "Reviewer",
        "escalation": "Escalation Manager",
        "product-owner": "Product Owner",
        "model-steward": "Model Steward",
        "data-curator": "Data Curator",
    }
    assert set(expected.values()) == set(ROLE_NAMES)
    for username, role in expected.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_staff
        assert user.check_password(f"{username}-demo-pass")
    assert User.objects.get(username="admin").is_superuser


def test_grants_narrow_each_role_to_its_queues_and_categories() -> None:
    seed()
    reviewers = User.objects.filter(username__in=["reviewer", "reviewer-lea", "reviewer-sam"])
    escalation = User.objects.get(username="escalation")
    owner = User.objects.get(username="product-owner")
    integration = User.objects.get(username="integration")
    for category in Category.objects.all():
        queues = {queue.kind: queue for queue in Queue.objects.filter(category=category)}
        for reviewer in reviewers:
            assert reviewer.has_perm("cases.work_queue", queues["quick"])
            assert reviewer.has_perm("cases.work_queue", queues["full"])
            assert not reviewer.has_perm("cases.work_queue", queues["escalation"])
        assert escalation.has_perm("cases.work_queue", queues["escalation"])
        assert escalation.has_perm("cases.work_queue", queues["expert"])
        assert not escalation.has_perm("cases.work_queue", queues["quick"])
        assert owner.has_perm("governance.change_category", category)
        assert owner.has_perm("governance.view_category", category)
        assert integration.has_perm("governance.submit_case", category)
        assert not integration.has_perm("governance.change_category", category)
    assert Token.objects.filter(user=integration).exists()


def test_cases_are_submitted_through_intake_and_routed() -> None:
    output = seed()
    assert f"seeding cases: {CASES}/{CASES}" in output
    assert "http://127.0.0.1:8000/admin/" in output
    assert Token.objects.get(user__username="integration").key in output
    cases = Case.objects.all()
    assert {case.category.slug for case in cases} == {"support-triage", "refund-requests", "lead-qualification"}
    assert {"auto", "quick_review", "full_review"} <= {case.route for case in cases}
    assert all(case.route_reasons for case in cases)
    # Every case was routed under the audit trail, by the integration user.
    routed = AuditEvent.objects.filter(kind="case.routed")
    assert routed.count() == CASES
    assert set(routed.values_list("actor_username", flat=True)) == {"integration"}
    # A validator category never lets an output act on its own.
    assert not cases.filter(category__slug="refund-requests", route="auto").exists()
