"""The built-in model's predictor (DESIGN.md, Feedback loop): loads a version's stored artifact, never trusting it.

Two checks stand between the stored bytes and running them:

- the SHA-256 recorded at registration must match the bytes, so an artifact changed in the database (by hand,
  by a bad restore, by someone who should not) is refused before it is parsed;
- skops parses the bytes without unpickling and instantiates only the types it is told to trust: its own list
  of scikit-learn estimators and numpy types, and the two private calibration types named in TRUSTED_TYPES.
  Anything else in the file is a refusal, never `trusted=True`.

Prediction runs the fitted estimator's arithmetic directly (LeanModel): scikit-learn's own `predict_proba` spends
about 10 ms a call validating its input (check_array, dataframe detection, signature inspection) against a
fraction of a millisecond of arithmetic, and intake has 5 ms for a prediction (DESIGN.md, Budgets). The lean path
is built at load time from the estimator's fitted parts, only for the shape `metrics.services.training
.build_estimator` makes; an estimator of any other shape is run by scikit-learn as before.
tests/test_lean_prediction.py holds the two to the same answers.

`input_text` (governance.model_input, re-exported here) turns a case's input into the text the model reads, the
same way for training (metrics) and prediction at intake (cases).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import skops.io
from numpy.typing import NDArray
from scipy.special import expit

from governance.artifacts import artifact_digest
from governance.model_input import input_text
from governance.models import ModelArtifact

if TYPE_CHECKING:
    from governance.models import ModelVersion

# What skops reports as untrusted in a CalibratedClassifierCV over a TF-IDF + logistic regression Pipeline
# (skops.io.get_untrusted_types); the pipeline, vectorizer, classifier and numpy arrays are on skops's own list.
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


__all__ = ["TRUSTED_TYPES", "ArtifactRefused", "LeanModel", "Predictor", "input_text", "lean_model", "load_predictor"]


class ArtifactRefused(Exception):
    """A model version's artifact is missing, does not match its recorded hash, or holds types we do not trust."""


@dataclass(frozen=True, eq=False)
class LeanModel:
    """The fitted arithmetic of a CalibratedClassifierCV(Pipeline([TfidfVectorizer, LogisticRegression]),
    method="sigmoid", ensemble=False), computed as scikit-learn computes it (TfidfVectorizer.transform, the
    regression's decision_function, `_CalibratedClassifier.predict_proba`) without its per-call validation.

    For one text: the vectorizer's analyzer gives the terms; their counts (1 if `binary`), log(count) + 1 if
    `sublinear_tf`, times the terms' idf, l2-normalised, are the TF-IDF row. The decision scores are
    row . coef + intercept: one score (for classes_[1]) with two classes, one a class with more. Each score s goes
    through its class's sigmoid, expit(-(a * s + b)). With two classes that is the second class's probability
    and the first gets 1 - p; with more, the per-class values are divided by their sum (uniform where the sum is
    0). A probability above 1 by at most 1e-5 is 1.
    """

    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    binary: bool
    sublinear_tf: bool
    idf: NDArray[np.float64] | None
    l2_norm: bool
    coef_by_term: NDArray[np.float64]  # n_features x n_scores: a text's terms pick their rows
    intercept: NDArray[np.float64]
    a: NDArray[np.float64]  # the calibrators' a_ and b_, one per score
    b: NDArray[np.float64]
    class_positions: NDArray[np.intp]  # where each score's probability goes among the classes
    n_classes: int

    def proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """The calibrated probabilities of the classes for each text (a row each, in `classes_` order); a batch
        goes through the arithmetic at once, as through scikit-learn."""
        n = len(texts)
        vocabulary = self.vocabulary
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for text in texts:
            row: dict[int, int] = {}
            for term in self.analyzer(text):
                index = vocabulary.get(term)
                if index is not None:
                    row[index] = row.get(index, 0) + 1
            indices.extend(row)
            counts.extend(row.values())
            indptr.append(len(indices))
        columns = np.array(indices, dtype=np.intp)
        values = np.array(counts, dtype=np.float64)
        if self.binary:
            values[:] = 1.0
        if self.sublinear_tf:
            values = np.log(values) + 1.0
        if self.idf is not None:
            values *= self.idf[columns]
        rows = np.repeat(np.arange(n), np.diff(indptr))
        if self.l2_norm:
            norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
            values /= np.where(norms == 0.0, 1.0, norms)[rows]
        # The sparse product TF-IDF x coef, a score column at a time (a handful of classes): scipy's sparse
        # matrix costs more to build for one text than all of this.
        weighted = values[:, np.newaxis] * self.coef_by_term[columns]
        scores = np.empty((n, self.intercept.shape[0]))
        for j in range(scores.shape[1]):
            scores[:, j] = np.bincount(rows, weights=weighted[:, j], minlength=n)
        scores += self.intercept
        calibrated = expit(-(self.a * scores + self.b))
        proba = np.zeros((n, self.n_classes))
        if self.n_classes == 2:
            proba[:, 1] = calibrated[:, 0]
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            proba[:, self.class_positions] = calibrated
            denominator = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / self.n_classes)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba


def lean_model(estimator: Any) -> LeanModel | None:
    """The LeanModel of `estimator`, or None when it is not of the one shape whose arithmetic LeanModel repeats
    (then scikit-learn's predict_proba runs it): anything but build_estimator's, ensemble=True included."""
    # Imported here: only a loaded model needs them.
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder

    if type(estimator) is not CalibratedClassifierCV or estimator.method != "sigmoid":
        return None
    calibrated_classifiers = getattr(estimator, "calibrated_classifiers_", None)
    if not calibrated_classifiers or len(calibrated_classifiers) != 1:
        return None
    calibrated = calibrated_classifiers[0]
    pipeline: Any = getattr(calibrated, "estimator", None)
    if type(calibrated) is not _CalibratedClassifier or type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return None
    vectorizer, clf = pipeline.steps[0][1], pipeline.steps[1][1]
    if type(vectorizer) is not TfidfVectorizer or type(clf) is not LogisticRegression:
        return None
    if vectorizer.input != "content" or np.dtype(vectorizer.dtype) != np.float64 or vectorizer.norm not in ("l2", None):
        return None
    classes = np.asarray(estimator.classes_)
    n_classes = len(classes)
    n_scores = 1 if n_classes == 2 else n_classes
    calibrators = list(calibrated.calibrators)
    coef = np.asarray(clf.coef_, dtype=np.float64)
    if (
        n_classes < 2
        or calibrated.method != "sigmoid"
        or len(calibrators) != n_scores
        or not all(type(c) is _SigmoidCalibration for c in calibrators)
        or coef.shape != (n_scores, len(vectorizer.vocabulary_))
        or not np.array_equal(np.asarray(calibrated.classes), classes)
        or not np.array_equal(np.asarray(clf.classes_), classes)
    ):
        return None
    return LeanModel(
        analyzer=vectorizer.build_analyzer(),
        vocabulary=vectorizer.vocabulary_,
        binary=bool(vectorizer.binary),
        sublinear_tf=bool(vectorizer.sublinear_tf),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64) if vectorizer.use_idf else None,
        l2_norm=vectorizer.norm == "l2",
        coef_by_term=np.ascontiguousarray(coef.T),
        intercept=np.asarray(clf.intercept_, dtype=np.float64).reshape(n_scores).copy(),
        a=np.array([float(c.a_) for c in calibrators]),
        b=np.array([float(c.b_) for c in calibrators]),
        class_positions=np.asarray(LabelEncoder().fit(calibrated.classes).transform(clf.classes_), dtype=np.intp),
        n_classes=n_classes,
    )


@dataclass(frozen=True)
class Predictor:
    """A loaded built-in model: the label it predicts for each text, with its calibrated confidence. `lean` runs
    it when the estimator has the shape it repeats (lean_model); scikit-learn's predict_proba otherwise."""

    model_version: str
    estimator: Any
    lean: LeanModel | None = field(default=None, compare=False, repr=False)

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.estimator.classes_]

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if not texts:
            return []
        rows = self.proba(texts)
        classes = self.classes
        predictions = []
        for row in rows:
            best = int(row.argmax())
            predictions.append((classes[best], float(row[best])))
        return predictions

    def proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Each text's probabilities of the classes (a row each, in `classes` order)."""
        if self.lean is None:
            return np.asarray(self.estimator.predict_proba(list(texts)), dtype=np.float64)
        return self.lean.proba(texts)


def load_predictor(version: ModelVersion) -> Predictor:
    """The predictor stored with `version`; ArtifactRefused if it has none, its bytes do not match the recorded
    hash, or they hold a type outside skops's trusted list and TRUSTED_TYPES."""
    stored = ModelArtifact.objects.filter(model_version=version).values_list("data", flat=True).first()
    data = bytes(stored) if stored is not None else b""
    if not data or not version.artifact_sha256:
        raise ArtifactRefused(f"{version.label} has no stored model artifact.")
    if not hmac.compare_digest(artifact_digest(data), version.artifact_sha256):
        raise ArtifactRefused(
            f"The artifact of {version.label} does not match its recorded SHA-256; it was changed after training "
            "and is not loaded. Retrain the model."
        )
    untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ArtifactRefused(f"The artifact of {version.label} holds types that are not trusted: {untrusted}.")
    try:
        estimator = skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # skops raises several kinds for a malformed file; all mean the same here
        raise ArtifactRefused(f"The artifact of {version.label} could not be loaded: {exc}") from exc
    return Predictor(model_version=version.label, estimator=estimator, lean=lean_model(estimator))
