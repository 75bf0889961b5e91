"""A built-in model's artifact is loaded only when its bytes match the hash recorded at registration, and only
with the types the predictor trusts (DESIGN.md, Feedback loop)."""

from __future__ import annotations

import pytest
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from governance.artifacts import artifact_digest
from governance.models import Category, ModelArtifact, ModelVersion
from governance.predictor import ArtifactRefused, input_text, load_predictor
from governance.services import register_model_version
from tests.factories import make_category

pytestmark = pytest.mark.django_db


def tiny_artifact() -> bytes:
    texts = [f"{word} case {i}" for word in ("refund", "shipping") for i in range(6)]
    labels = [text.split()[0] for text in texts]
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    model = CalibratedClassifierCV(pipeline, cv=2, method="sigmoid", ensemble=False).fit(texts, labels)
    data: bytes = skops.io.dumps(model)
    return data


@pytest.fixture
def category() -> Category:
    return make_category("pred")


@pytest.fixture
def version(category: Category) -> ModelVersion:
    return register_model_version(
        category=category, name="builtin", version="1", user=None, reason="test", artifact=tiny_artifact()
    )


def test_a_registered_artifact_is_stored_with_its_hash_and_predicts(version: ModelVersion) -> None:
    version.refresh_from_db()
    assert version.artifact_sha256 == artifact_digest(bytes(ModelArtifact.objects.get(model_version=version).data))
    predictions = load_predictor(version).predict(["I want a refund", "shipping is late"])
    assert [label for label, _ in predictions] == ["refund", "shipping"]
    assert all(0.5 < confidence <= 1 for _, confidence in predictions)


def test_it_refuses_a_tampered_artifact(version: ModelVersion) -> None:
    data = bytearray(ModelArtifact.objects.get(model_version=version).data)
    data[len(data) // 2] ^= 0x01
    ModelArtifact.objects.filter(model_version=version).update(data=bytes(data))
    version.refresh_from_db()
    with pytest.raises(ArtifactRefused, match="does not match its recorded SHA-256"):
        load_predictor(version)


def test_it_refuses_a_version_without_an_artifact(category: Category) -> None:
    version = ModelVersion.objects.get(category=category, name="model")
    with pytest.raises(ArtifactRefused, match="no stored model artifact"):
        load_predictor(version)


def test_it_refuses_an_artifact_holding_an_untrusted_type(version: ModelVersion) -> None:
    data = skops.io.dumps({"model": CalibratedClassifierCV, "f": artifact_digest})
    ModelArtifact.objects.filter(model_version=version).update(data=data)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256=artifact_digest(data))
    version.refresh_from_db()
    with pytest.raises(ArtifactRefused, match="not trusted"):
        load_predictor(version)


def test_the_model_reads_the_redacted_text_of_the_input() -> None:
    text = input_text({"subject": "Refund", "body": {"text": "mail me at a@b.com"}, "n": 3}, pii_fields=[])
    assert text == "Refund\nmail me at [email]"
