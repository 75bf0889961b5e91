"""The built-in model's lean prediction path (governance.predictor.LeanModel) gives scikit-learn's answers: the same
label and the same calibrated probability (within 1e-9), on models trained by the real train_model, with two labels
and with more; an estimator of another shape is left to scikit-learn (DESIGN.md, Feedback loop and Budgets)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import skops.io
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from governance.predictor import Predictor, lean_model, load_predictor
from governance.services import register_model_version
from tests.factories import FILLER, TOPIC_WORDS, make_builtin, make_category

pytestmark = pytest.mark.django_db

TOLERANCE = 1e-9
WORDS = sorted({w for words in TOPIC_WORDS.values() for phrase in words for w in phrase.split()} | set(FILLER))


def corpus(seed: int, n: int = 300) -> list[str]:
    """Texts like the training cases' and unlike them: topic words of several topics at once, filler only, words
    the model never saw, repeats (counts above 1), punctuation and case, an empty text."""
    rng = random.Random(seed)
    vocabulary = [*WORDS, "zebra", "ORD-123456", "Ticket", "!!", "Refund?", "PARCEL"]
    texts = ["", "   ", "zebra quokka", "refund refund refund refund", "Ticket 3\nparcel"]
    for _ in range(n):
        texts.append(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 14))))
    return texts


def assert_same_answers(predictor: Predictor, texts: list[str]) -> None:
    assert predictor.lean is not None
    reference = predictor.estimator.predict_proba(texts)
    lean = predictor.lean.proba(texts)
    assert lean.shape == reference.shape
    assert np.abs(lean - reference).max() <= TOLERANCE
    classes = predictor.classes
    for text, row, (label, confidence) in zip(texts, reference, predictor.predict(texts), strict=True):
        top = np.sort(row)[-2:]
        if top[1] - top[0] > TOLERANCE:  # an exact tie may go either way by a rounding
            assert label == classes[int(row.argmax())], text
        assert abs(confidence - float(row.max())) <= TOLERANCE, text


@pytest.mark.parametrize("topics", [tuple(sorted(TOPIC_WORDS)), ("refund", "shipping")], ids=["multiclass", "binary"])
def test_a_trained_builtin_is_predicted_on_the_lean_path_with_scikit_learns_answers(topics: tuple[str, ...]) -> None:
    # One model a label set for all three checks: training one takes seconds.
    version = make_builtin(make_category(f"lean-{len(topics)}"), status="shadow", topics=topics)
    predictor = load_predictor(version)
    assert predictor.lean is not None
    assert predictor.classes == sorted(topics)

    texts = corpus(seed=len(topics))
    assert_same_answers(predictor, texts)  # a batch at once, as intake's bulk predicts
    for text in texts[:50]:
        assert_same_answers(predictor, [text])  # and one text a call, as a single case does

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=20).map(" ".join))
    def any_text(text: str) -> None:
        assert_same_answers(predictor, [text])

    any_text()


def ensemble_artifact() -> bytes:
    texts = [f"{word} case {i}" for word in ("refund", "shipping", "login") for i in range(6)]
    labels = [text.split()[0] for text in texts]
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    model = CalibratedClassifierCV(pipeline, cv=2, method="sigmoid", ensemble=True).fit(texts, labels)
    data: bytes = skops.io.dumps(model)
    return data


def test_an_estimator_of_another_shape_is_predicted_by_scikit_learn() -> None:
    version = register_model_version(
        category=make_category("lean-other"),
        name="builtin",
        version="1",
        user=None,
        reason="test",
        artifact=ensemble_artifact(),
    )
    predictor = load_predictor(version)
    assert predictor.lean is None  # two calibrated classifiers (ensemble=True): not the shape it repeats
    texts = ["I want a refund", "shipping is late", "login fails"]
    reference = predictor.estimator.predict_proba(texts)
    assert [label for label, _ in predictor.predict(texts)] == ["refund", "shipping", "login"]
    assert [confidence for _, confidence in predictor.predict(texts)] == [float(row.max()) for row in reference]


@pytest.mark.parametrize(
    "estimator",
    [
        Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]),
        CalibratedClassifierCV(
            Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]), cv=2, method="isotonic"
        ),
        CalibratedClassifierCV(
            Pipeline([("tfidf", TfidfVectorizer(norm="l1")), ("clf", LogisticRegression())]), cv=2, ensemble=False
        ),
    ],
    ids=["uncalibrated", "isotonic", "l1-norm"],
)
def test_lean_model_declines_what_it_does_not_repeat(estimator: object) -> None:
    texts = [f"{word} case {i}" for word in ("refund", "shipping") for i in range(6)]
    fitted = estimator.fit(texts, [text.split()[0] for text in texts])  # type: ignore[attr-defined]
    assert lean_model(fitted) is None
