"""Intake with the built-in model (DESIGN.md, Feedback loop): a category whose active version is built-in takes cases
without `output` and `confidence` and routes the model's prediction, saying so; a case that brings its own answer is
routed as before; a category without one refuses such a case naming `output`; a refused artifact refuses the case
(503) and writes nothing. A built-in version in shadow answers every case on the side, measured, never shown."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from cases.models import Case, ShadowPrediction
from cases.services import prediction
from governance.models import AuditEvent, Category, ModelArtifact, ModelVersion
from governance.predictor import Predictor, load_predictor
from tests.factories import grant_submit, make_builtin, make_category

URL = "/api/v1/cases/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("tickets", auto_threshold=0.9, review_threshold=0.6)


@pytest.fixture
def builtin(category: Category) -> ModelVersion:
    return make_builtin(category)


@pytest.fixture
def client(api: Any, make_user: Any, category: Category) -> Any:
    integration = make_user("integration")
    grant_submit(integration, category)
    return api(integration)


def unanswered(external_id: str = "t-1", text: str = "the courier lost my parcel, delivery failed") -> dict[str, Any]:
    return {"category": "tickets", "external_id": external_id, "input": {"body": text}}


def nothing_written(before: tuple[int, int]) -> bool:
    return (Case.objects.filter(external_id__startswith="t-").count(), AuditEvent.objects.count()) == (0, before[1])


def counts() -> tuple[int, int]:
    return Case.objects.count(), AuditEvent.objects.count()


def test_a_case_without_an_answer_is_predicted_and_routed_by_the_active_builtin(client: Any, builtin: ModelVersion):
    response = client.post(URL, unanswered(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["model_version"] == "builtin@1" and data["model_version_status"] == "active"
    assert data["output"] == {"label": "shipping"}
    assert 0.5 < data["confidence"] <= 1
    reason = data["route_reasons"][0]
    assert reason.startswith("The built-in model builtin@1 predicted 'shipping' at ")
    assert data["route"] in {"auto", "quick_review"} and len(data["route_reasons"]) >= 2
    routed = AuditEvent.objects.get(kind="case.routed", case_id=data["id"])
    assert routed.payload["reasons"][0] == reason and routed.payload["model_version"] == "builtin@1"


def test_the_model_version_may_name_the_active_builtin(client: Any, builtin: ModelVersion):
    response = client.post(
        URL, {**unanswered(text="I want my money back"), "model_version": "builtin@1"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["output"] == {"label": "refund"}


def test_a_case_naming_another_model_without_its_answer_is_refused(client: Any, builtin: ModelVersion):
    before = counts()
    response = client.post(URL, {**unanswered(), "model_version": "vendor@3"}, format="json")
    assert response.status_code == 400
    assert "builtin@1" in response.json()["output"][0]
    assert nothing_written(before) and not ModelVersion.objects.filter(name="vendor").exists()


def test_a_case_with_its_own_answer_is_routed_as_before(client: Any, builtin: ModelVersion):
    body = {**unanswered(), "output": {"label": "login"}, "confidence": 0.97, "model_version": "builtin@1"}
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["output"] == {"label": "login"} and data["confidence"] == 0.97
    assert not any("built-in model" in reason for reason in data["route_reasons"])


def test_without_an_active_builtin_an_unanswered_case_is_refused_naming_output(client: Any, category: Category):
    make_builtin(category, status="shadow")  # in shadow it answers nothing that acts
    before = counts()
    response = client.post(URL, unanswered(), format="json")
    assert response.status_code == 400
    assert "no active built-in model" in response.json()["output"][0]
    assert nothing_written(before)


@pytest.mark.parametrize(("sent", "missing"), [("output", "confidence"), ("confidence", "output")])
def test_half_an_answer_is_refused_naming_the_missing_half(client: Any, builtin: ModelVersion, sent: str, missing: str):
    body = {**unanswered(), "model_version": "builtin@1"}
    body[sent] = {"label": "login"} if sent == "output" else 0.9
    before = counts()
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [missing]
    assert nothing_written(before)


def test_an_answer_without_a_model_version_is_refused_naming_it(client: Any, builtin: ModelVersion):
    body = {**unanswered(), "output": {"label": "login"}, "confidence": 0.9}
    response = client.post(URL, body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["model_version"]


def tamper(version: ModelVersion) -> None:
    data = bytearray(ModelArtifact.objects.get(model_version=version).data)
    data[len(data) // 2] ^= 0x01
    ModelArtifact.objects.filter(model_version=version).update(data=bytes(data))


def test_a_tampered_artifact_refuses_the_case_with_a_503_and_writes_nothing(client: Any, builtin: ModelVersion):
    tamper(builtin)
    before = counts()
    response = client.post(URL, unanswered(), format="json")
    assert response.status_code == 503
    message = response.json()["output"][0]
    assert "does not match its recorded SHA-256" in message and "own `output`" in message
    assert nothing_written(before)
    # A case that brings its own answer is not held up by the broken artifact.
    own = {**unanswered("t-2"), "output": {"label": "login"}, "confidence": 0.9, "model_version": "builtin@1"}
    assert client.post(URL, own, format="json").status_code == 201


def test_a_bulk_is_predicted_in_one_pass_and_a_refused_artifact_fails_only_its_items(
    client: Any, builtin: ModelVersion
):
    texts = ["parcel courier delivery", "password login sign in", "refund money back please"]
    items = [unanswered(f"t-{i}", text) for i, text in enumerate(texts)]
    original = Predictor.predict
    with mock.patch.object(Predictor, "predict", autospec=True, side_effect=original) as predict:
        response = client.post(URL + "bulk/", {"cases": items}, format="json")
    assert response.status_code == 200 and response.json()["created"] == 3
    assert [r["case"]["output"]["label"] for r in response.json()["results"]] == ["shipping", "login", "refund"]
    assert predict.call_count == 1 and len(predict.call_args.args[1]) == 3  # one pass for the whole bulk

    tamper(builtin)
    prediction.clear_predictor_cache()
    own = {**unanswered("t-9"), "output": {"label": "login"}, "confidence": 0.9, "model_version": "builtin@1"}
    response = client.post(URL + "bulk/", {"cases": [unanswered("t-8"), own]}, format="json")
    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["result"] == "invalid" and "SHA-256" in results[0]["errors"]["output"][0]
    assert results[1]["result"] == "created"


def test_a_loaded_model_is_kept_so_the_next_prediction_does_not_reload_it(client: Any, builtin: ModelVersion):
    with mock.patch("governance.predictor.load_predictor", wraps=load_predictor) as load:
        for i in range(3):
            assert client.post(URL, unanswered(f"t-{i}"), format="json").status_code == 201
    assert load.call_count == 1


def test_a_shadow_builtin_answers_every_case_on_the_side_unseen(client: Any, category: Category):
    shadow = make_builtin(category, status="shadow")
    body = {**unanswered(), "output": {"label": "refund"}, "confidence": 0.8, "model_version": "model@1"}
    response = client.post(URL, body, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["output"] == {"label": "refund"}  # the case's own answer acts; the shadow one is only measured
    assert not any("built-in" in reason for reason in data["route_reasons"])
    stored = ShadowPrediction.objects.get(case_id=data["id"])
    assert (stored.model_version, stored.label) == (shadow, "shipping") and 0 < stored.confidence <= 1
    assert "shipping" not in response.content.decode()


def test_a_refused_shadow_artifact_never_stops_intake(client: Any, category: Category):
    shadow = make_builtin(category, status="shadow")
    tamper(shadow)
    body = {**unanswered(), "output": {"label": "refund"}, "confidence": 0.8, "model_version": "model@1"}
    assert client.post(URL, body, format="json").status_code == 201
    assert not ShadowPrediction.objects.exists()
