"""Model version KPIs: canary beside active, audits, and shadow agreement with its Wilson interval."""

from __future__ import annotations

import pytest

from cases.models import Queue
from governance.models import ModelVersion
from governance.services import register_model_version
from metrics.selectors import with_kpis
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


def test_each_version_carries_its_own_kpis(make_user):
    category = make_category("cat", audit_rate=1.0)
    register_model_version(category=category, name="model", version="2", user=None, status="canary", reason="try")
    reviewer = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(reviewer, queue)
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    for label in ("model@1", "model@2"):
        make_case(category, model_version=label, confidence=0.99)  # auto, drawn for audit
        quick = make_case(category, model_version=label, confidence=0.8)
        action = "approve" if label == "model@1" else "correct"
        review.decide(case=quick, user=reviewer, action=action, output={"label": "z"})
    audited = make_case(category, model_version="model@2", confidence=0.99)
    review.decide(case=audited, user=reviewer, action="flag", reason_code="wrong_label", output={"label": "z"})
    kpis = {v.label: v for v in with_kpis(ModelVersion.objects.filter(category=category))}
    active, canary = kpis["model@1"], kpis["model@2"]
    assert (active.kpi_cases, active.kpi_auto, active.kpi_reviewed, active.kpi_overridden) == (2, 1, 1, 0)
    assert (canary.kpi_cases, canary.kpi_auto, canary.kpi_reviewed, canary.kpi_overridden) == (3, 2, 2, 2)
    assert (canary.kpi_audited, canary.kpi_flagged) == (1, 1)


def test_shadow_agreement_is_counted_per_version_and_shown_with_its_interval(client, make_user, superuser):
    category = make_category("blind", stage="shadow")
    reviewer = make_user("rev", roles=["Reviewer"])
    grant_queue(reviewer, Queue.objects.get(slug="blind-full"))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    for i in range(10):
        case = make_case(category, output={"label": "refund"}, confidence=0.9)
        review.decide(case=case, user=reviewer, action="approve", output={"label": "refund" if i < 8 else "deny"})
    version = with_kpis(ModelVersion.objects.filter(category=category)).get()
    assert (version.kpi_shadow_agree, version.kpi_shadow_total) == (8, 10)
    client.force_login(superuser)
    page = client.get("/admin/metrics/modelversionperformance/").content.decode()
    assert "80% (49%-94%, n=10)" in page
