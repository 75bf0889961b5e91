"""The built-in model's predictor (DESIGN.md, Feedback loop): loads a version's stored artifact, never trusting it.

Two checks stand between the stored bytes and running them:

- the SHA-256 recorded at registration must match the bytes, so an artifact changed in the database (by hand,
  by a bad restore, by someone who should not) is refused before it is parsed;
- skops parses the bytes without unpickling and instantiates only the types it is told to trust: its own list
  of scikit-learn estimators and numpy types, and the two private calibration types named in TRUSTED_TYPES.
  Anything else in the file is a refusal, never `trusted=True`.

`input_text` (governance.model_input, re-exported here) turns a case's input into the text the model reads, the
same way for training (metrics) and prediction at intake (cases).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import skops.io

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


__all__ = ["TRUSTED_TYPES", "ArtifactRefused", "Predictor", "input_text", "load_predictor"]


class ArtifactRefused(Exception):
    """A model version's artifact is missing, does not match its recorded hash, or holds types we do not trust."""


@dataclass(frozen=True)
class Predictor:
    """A loaded built-in model: the label it predicts for each text, with its calibrated confidence."""

    model_version: str
    estimator: Any

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.estimator.classes_]

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if not texts:
            return []
        classes = self.classes
        predictions = []
        for row in self.estimator.predict_proba(list(texts)):
            best = int(row.argmax())
            predictions.append((classes[best], float(row[best])))
        return predictions


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
    return Predictor(model_version=version.label, estimator=estimator)
