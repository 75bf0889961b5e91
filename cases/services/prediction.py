"""The built-in model at intake (DESIGN.md, Feedback loop): it answers the cases of a category whose active version
it is, and the version of it in `shadow` answers them too, on the side, so it is measured on live traffic.

A prediction must cost milliseconds, not a load: the loaded model is kept per process, keyed by the SHA-256 of
its artifact. The hash is checked once, when the bytes are loaded (governance.predictor); the key is the hash the
version recorded, so a retrained version (a new hash) is loaded afresh and an old one falls out of the cache.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Q

from governance.choices import ModelStatus
from governance.models import Category, ModelVersion
from governance.promotion_gate import BUILTIN_MODEL_NAME
from governance.services import parse_model_label

if TYPE_CHECKING:
    from collections.abc import Iterable

    from governance.predictor import Predictor

logger = logging.getLogger("hitl.prediction")

# A handful of categories with a built-in model each, plus a shadow version beside each active one.
MAX_CACHED_PREDICTORS = 16

_cache: OrderedDict[str, Predictor] = OrderedDict()
_cache_lock = threading.Lock()


class PredictionUnavailable(Exception):
    """The built-in model that should answer a case cannot be loaded (its artifact was refused): the case is not
    taken, since nothing could route it honestly. The message says why and what the client can do instead."""


@dataclass(frozen=True)
class BuiltinVersions:
    """A category's built-in versions that answer at intake: the active one (if it is built-in) and the newest in
    shadow (if any)."""

    active: ModelVersion | None = None
    shadow: ModelVersion | None = None


def builtin_versions(category: Category) -> BuiltinVersions:
    """One query: the category's built-in versions, with an artifact, that are active or in shadow. The newest
    shadow one is the one being proven; older ones in shadow are not measured any more."""
    return intake_versions(category, [])[0]


def intake_versions(category: Category, labels: Iterable[str]) -> tuple[BuiltinVersions, dict[str, ModelVersion]]:
    """One query for what intake needs of a category's model versions: its built-in ones that answer at intake
    (what `builtin_versions` returns) and the versions the cases name, by label (`name@version`). A label that is
    not among them names a version never seen: intake registers it."""
    named = Q()
    for label in set(labels):
        if label:
            name, number = parse_model_label(label)
            named |= Q(name=name, version=number)
    builtin = Q(name=BUILTIN_MODEL_NAME, status__in=[ModelStatus.ACTIVE, ModelStatus.SHADOW]) & ~Q(artifact_sha256="")
    rows = ModelVersion.objects.filter(category=category).filter(builtin | named).order_by("-created_at", "-pk")
    found: dict[str, ModelVersion | None] = {"active": None, "shadow": None}
    by_label: dict[str, ModelVersion] = {}
    for version in rows:  # newest first
        by_label[version.label] = version
        if version.name == BUILTIN_MODEL_NAME and version.artifact_sha256:
            if version.status == ModelStatus.ACTIVE:
                found["active"] = found["active"] or version
            elif version.status == ModelStatus.SHADOW:
                found["shadow"] = found["shadow"] or version
    # Promoting a version to active retires the previous one, so an active built-in version is the active one.
    return BuiltinVersions(active=found["active"], shadow=found["shadow"]), by_label


def predictor_for(version: ModelVersion) -> Predictor:
    """The loaded model of `version`, from this process's cache when its artifact was loaded before; raises
    PredictionUnavailable when the artifact is refused."""
    key = version.artifact_sha256
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    # Imported on first use: scikit-learn and skops take seconds to import, which the RQ work horses (they import
    # the intake services for other jobs) and processes that never predict must not pay.
    from governance.predictor import ArtifactRefused, load_predictor

    try:
        predictor = load_predictor(version)
    except ArtifactRefused as exc:
        logger.error("Refused the artifact of %s (%s): %s", version.label, version.category_id, exc)
        raise PredictionUnavailable(str(exc)) from exc
    with _cache_lock:
        _cache[key] = predictor
        while len(_cache) > MAX_CACHED_PREDICTORS:
            _cache.popitem(last=False)
    return predictor


def clear_predictor_cache() -> None:
    """Forget every loaded model (tests; an operator who wants the next prediction to reload and re-check)."""
    with _cache_lock:
        _cache.clear()


def check_predictable(*, category: Category, versions: BuiltinVersions, model_version: str) -> ModelVersion:
    """The built-in version that will answer a case sent without `output` and `confidence`: ValidationError
    naming `output` when the category has none active (or the case names another model), PredictionUnavailable
    when its artifact is refused."""
    active = versions.active
    if active is None:
        raise ValidationError(
            {
                "output": (
                    f"Required: {category.slug!r} has no active built-in model to predict with, so a case must bring "
                    "its model's `output` and `confidence`."
                )
            }
        )
    if model_version and model_version != active.label:
        raise ValidationError(
            {
                "output": (
                    f"Required with model_version {model_version!r}: only the category's active built-in model "
                    f"({active.label}) predicts at intake. Send that model's `output` and `confidence`, or omit "
                    "`model_version` to let the built-in model answer."
                )
            }
        )
    predictor_for(active)
    return active


def prediction_reason(version: ModelVersion, label: str, confidence: float) -> str:
    """The route reason that says the answer is the built-in model's, in plain words."""
    return f"The built-in model {version.label} predicted {label!r} at {confidence:.2f} (no output was sent)."
