"""Promotion with evidence: the promote form shows the version's evaluation beside the active version's and the
live figures of the version, the active one and the canary, offers only the steps allowed, and warns before a step
that skips shadow or canary (which then needs a deliberate tick)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from governance.models import Category, ModelVersion
from governance.services import register_model_version
from governance.services.model_versions import skipped_stages
from tests.factories import make_case, make_category, model_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    category = make_category("prom")  # model@1 is active
    ModelVersion.objects.filter(category=category).update(metrics={"holdout_accuracy": 0.91, "n": 400})
    return category


@pytest.fixture
def steward(make_user: Any) -> Client:
    client = Client()
    client.force_login(make_user("steward", roles=["Model Steward"], is_staff=True))
    return client


def register(category: Category, label: str, status: str = "registered", **metrics: Any) -> ModelVersion:
    name, version = label.split("@")
    return register_model_version(
        category=category, name=name, version=version, user=None, status=status, reason="test", metrics=metrics
    )


def promote_url(version: ModelVersion) -> str:
    return reverse("admin:governance_modelversion_promote", args=[version.pk])


def test_skipped_stages_name_the_checks_a_step_leaves_out() -> None:
    assert skipped_stages("registered", "shadow") == []
    assert skipped_stages("registered", "canary") == ["shadow"]
    assert skipped_stages("registered", "active") == ["shadow", "canary"]
    assert skipped_stages("shadow", "active") == ["canary"]
    assert skipped_stages("canary", "active") == []
    assert skipped_stages("active", "retired") == [] and skipped_stages("retired", "active") == []


def test_the_promote_form_shows_the_evaluation_beside_the_active_and_the_canarys_live_figures(
    category: Category, steward: Client
) -> None:
    candidate = register(category, "model@2", holdout_accuracy=0.93, n=400)
    register(category, "model@3", status="canary")
    for _ in range(3):
        make_case(category, model_version="model@3", confidence=0.99)  # the canary acts on its own
    make_case(category, model_version="model@1", confidence=0.5)  # the active one's case goes to a person
    page = steward.get(promote_url(candidate)).content.decode()
    evaluation = page.split("Evaluation, beside the active version")[1].split("Live figures")[0]
    assert "<th>model@2</th><th>model@1 (active)</th>" in evaluation
    assert "<tr><th>holdout_accuracy</th><td>0.930</td><td>0.910</td></tr>" in evaluation
    assert "<tr><th>n</th><td>400</td><td>400</td></tr>" in evaluation
    live = page.split("Live figures")[1]
    assert "<tr><th>model@1 (active)</th><td>1</td><td>0% (0%-79%, n=1)</td>" in live
    assert "<tr><th>model@3 (canary)</th><td>3</td><td>100% (44%-100%, n=3)</td>" in live
    assert "<tr><th>model@2 (registered) - this one</th><td>0</td>" in live
    assert "From registered, to canary: skips shadow; to active: skips shadow and canary." in page


def test_a_step_that_skips_shadow_and_canary_is_refused_until_confirmed(category: Category, steward: Client) -> None:
    candidate = register(category, "model@2")
    post = {"post": "yes", "status": "active", "reason": "urgent fix"}
    response = steward.post(promote_url(candidate), post)
    assert response.status_code == 200
    assert (
        "model@2 would go from registered to active without shadow and canary. Tick &#x27;Skip them&#x27; to "
        "promote anyway." in response.content.decode()
    )
    assert ModelVersion.objects.get(pk=candidate.pk).status == "registered"
    assert model_version(category, "model@1").status == "active"
    assert steward.post(promote_url(candidate), {**post, "skip_confirmed": "on"}).status_code == 302
    assert ModelVersion.objects.get(pk=candidate.pk).status == "active"
    assert model_version(category, "model@1").status == "retired"


def test_a_step_that_skips_nothing_needs_no_confirmation(category: Category, steward: Client) -> None:
    candidate = register(category, "model@2", status="shadow")
    response = steward.post(promote_url(candidate), {"post": "yes", "status": "canary", "reason": "agrees 97 %"})
    assert response.status_code == 302
    assert ModelVersion.objects.get(pk=candidate.pk).status == "canary"


def test_the_form_offers_only_the_steps_the_version_may_take(category: Category, steward: Client) -> None:
    active = model_version(category, "model@1")
    form = steward.get(promote_url(active)).context["form"]
    assert [value for value, _ in form.fields["status"].choices] == ["retired"]
    candidate = register(category, "model@2", status="shadow")
    form = steward.get(promote_url(candidate)).context["form"]
    assert [value for value, _ in form.fields["status"].choices] == ["canary", "active", "retired"]


def test_someone_who_may_not_promote_sees_no_form_and_nothing_changes(category: Category, make_user: Any) -> None:
    candidate = register(category, "model@2")
    client = Client()
    user: User = make_user("po", roles=["Product Owner"], is_staff=True)
    client.force_login(user)
    response = client.post(promote_url(candidate), {"post": "yes", "status": "shadow", "reason": "x"})
    assert response.status_code in (403, 404)
    assert ModelVersion.objects.get(pk=candidate.pk).status == "registered"
