"""Training the built-in baseline model from a category's gated labels (DESIGN.md, Feedback loop).

The labels that passed the quality gate and that no later human word superseded, oldest first, are split by
time: the newest 20 % are held out, because a model is used on cases that come after the ones it learned from
and a random split would let it peek at the future. The classifier is TF-IDF over the input's redacted text
(governance.predictor.input_text, the same text intake will predict from) and a logistic regression, its
probabilities calibrated (sigmoid, cross-validated on the training part), because routing acts on confidence
and an uncalibrated 0.97 means nothing.

It is registered as `builtin@<n>` in `shadow`: it proves itself before anything acts on it. The held-out
figures go into the version's `metrics`, and beside them (`versus_active`) the same figures for the answers
the cases came with, which is what the active model said: the promotion gate (governance) only reads these
numbers, as it may not look at labels itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import skops.io
from django.utils import timezone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from governance.choices import ModelStatus
from governance.models import Category, ModelVersion
from governance.predictor import input_text
from governance.promotion_gate import BUILTIN_MODEL_NAME
from governance.services import register_model_version
from metrics import evaluation
from metrics.evaluation import Answer
from reviews.models import Label

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BUILTIN_NAME = BUILTIN_MODEL_NAME
MIN_LABELS = 50
MIN_PER_CLASS = 5
HELD_OUT_SHARE = 0.20
MAX_CV_FOLDS = 3


class TrainingRefused(Exception):
    """Training was not attempted because the data cannot give a trustworthy model; the message says why."""


@dataclass(frozen=True)
class TrainingResult:
    """The version a training run registered, its held-out figures, and how long the fit took."""

    model_version: ModelVersion
    metrics: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class Example:
    case_id: int
    text: str
    label: str
    case_answer: Answer


def gated_examples(category: Category) -> list[Example]:
    """The category's current gated labels in time order, each with its case's text and the case's own answer."""
    rows = (
        Label.objects.current()
        .filter(category=category, passed_gate=True)
        .select_related("case")
        .only("label", "created_at", "case__id", "case__input", "case__output", "case__confidence")
        .order_by("created_at", "id")
    )
    examples = []
    for row in rows.iterator(chunk_size=2000):
        output = row.case.output if isinstance(row.case.output, dict) else {}
        examples.append(
            Example(
                case_id=row.case.pk,
                text=input_text(row.case.input, pii_fields=category.pii_fields),
                label=row.label,
                case_answer=Answer(str(output.get("label", "")), float(row.case.confidence)),
            )
        )
    return examples


def check_trainable(examples: list[Example], train: list[Example]) -> None:
    """Refuse data too thin for a model worth shadowing: too few labels, a class too rare, or a class the older
    part (what the model learns from) holds too few of to calibrate on."""
    if len(examples) < MIN_LABELS:
        raise TrainingRefused(
            f"Only {len(examples)} gated labels; training needs at least {MIN_LABELS} "
            "(labels by certified reviewers, not superseded)."
        )
    counts = _counts(e.label for e in examples)
    rare = {label: n for label, n in counts.items() if n < MIN_PER_CLASS}
    if rare:
        listed = ", ".join(f"{label!r} has {n}" for label, n in sorted(rare.items()))
        raise TrainingRefused(f"Each label needs at least {MIN_PER_CLASS} gated examples: {listed}.")
    if len(counts) < 2:
        raise TrainingRefused(f"All gated labels say {next(iter(counts))!r}; a classifier needs two labels or more.")
    train_counts = _counts(e.label for e in train)
    thin = sorted(label for label in counts if train_counts.get(label, 0) < 2)
    if thin:
        raise TrainingRefused(
            f"The older {100 - round(HELD_OUT_SHARE * 100)} % of the labels (what the model learns from) hold fewer "
            f"than 2 examples of {', '.join(map(repr, thin))}; more labels of it are needed."
        )
    if not any(e.text.strip() for e in train):
        raise TrainingRefused("The inputs of the labelled cases hold no text to learn from.")


def _counts(labels: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def build_estimator(train: list[Example]) -> CalibratedClassifierCV:
    """TF-IDF (words and word pairs) and a logistic regression, with sigmoid calibration cross-validated on as many
    folds as the rarest class allows (at most 3); one final pipeline (ensemble=False) keeps the artifact small.
    A term must be in two inputs at least (min_df=2): order numbers, ticket ids and the like, each in one case,
    teach nothing and would make the vocabulary, the fit and the stored artifact grow with every label (at 10,000
    labels, 48,000 terms and minutes to store and load, against 500 terms and under a second)."""
    folds = min(MAX_CV_FOLDS, min(_counts(e.label for e in train).values()))
    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200_000)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    return CalibratedClassifierCV(pipeline, cv=folds, method="sigmoid", ensemble=False)


def _drop_cut_terms(estimator: CalibratedClassifierCV) -> None:
    """Forget the terms the vectorizer left out (`stop_words_`: introspection only, scikit-learn says, and safe to
    drop before storing), which are as many as the inputs' one-off tokens."""
    for calibrated in estimator.calibrated_classifiers_:
        vectorizer = calibrated.estimator.named_steps["tfidf"]
        if hasattr(vectorizer, "stop_words_"):
            vectorizer.stop_words_ = None


def held_out_figures(
    *, answers: list[Answer], truth: list[str], probabilities: list[dict[str, float]] | None
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "n": len(truth),
        "accuracy": evaluation.accuracy(answers, truth),
        "macro_f1": evaluation.macro_f1(answers, truth),
        "ece": evaluation.expected_calibration_error(answers, truth),
        "thresholds": evaluation.threshold_table(answers, truth),
    }
    if probabilities is not None:
        figures["brier"] = evaluation.brier(probabilities, truth)
    return figures


def versus_active(
    *, category: Category, held_out: list[Example], answers: list[Answer], truth: list[str]
) -> dict[str, Any]:
    """The figures the promotion gate compares: both models on the same held-out cases, at the policy's auto
    threshold (and at every candidate, should the threshold change before promotion)."""
    active = ModelVersion.objects.filter(category=category, status=ModelStatus.ACTIVE).order_by("-created_at").first()
    threshold = float(category.policy.auto_threshold)
    case_answers = [e.case_answer for e in held_out]
    return {
        "active": active.label if active is not None else None,
        "auto_threshold": threshold,
        "n": len(truth),
        "builtin": {
            "accuracy": evaluation.accuracy(answers, truth),
            **evaluation.at_threshold(answers, truth, threshold),
        },
        "active_figures": {
            "accuracy": evaluation.accuracy(case_answers, truth),
            **evaluation.at_threshold(case_answers, truth, threshold),
        },
        "active_thresholds": evaluation.threshold_table(case_answers, truth),
    }


def next_builtin_version(category: Category) -> str:
    versions = ModelVersion.objects.filter(category=category, name=BUILTIN_NAME).values_list("version", flat=True)
    return str(max((int(v) for v in versions if v.isdigit()), default=0) + 1)


# Told how far a run has got: the share done (0 to 1) and what it is doing, in words.
Progress = Callable[[float, str], None]


def _no_progress(share: float, message: str) -> None:
    return None


def train_model(*, category: Category, user: User | None = None, progress: Progress = _no_progress) -> TrainingResult:
    """Train a built-in model on the category's gated labels and register it as `builtin@<n>` in shadow, or raise
    TrainingRefused saying why the data will not do. `progress` hears of each step (a TrainingRun shows them)."""
    started = time.monotonic()
    progress(0.05, "Reading the gated labels")
    examples = gated_examples(category)
    cut = len(examples) - max(1, round(len(examples) * HELD_OUT_SHARE))
    train, held_out = examples[:cut], examples[cut:]
    check_trainable(examples, train)

    progress(0.2, f"Fitting on {len(train)} labels")
    estimator = build_estimator(train).fit([e.text for e in train], [e.label for e in train])
    progress(0.7, f"Measuring on {len(held_out)} held-out labels")
    classes = [str(c) for c in estimator.classes_]
    probability_rows = estimator.predict_proba([e.text for e in held_out])
    probabilities = [{cls: float(p) for cls, p in zip(classes, row, strict=True)} for row in probability_rows]
    answers = [Answer(max(probs, key=probs.__getitem__), max(probs.values())) for probs in probabilities]
    truth = [e.label for e in held_out]

    metrics: dict[str, Any] = {
        **held_out_figures(answers=answers, truth=truth, probabilities=probabilities),
        "n_train": len(train),
        "classes": classes,
        "held_out_cases": [e.case_id for e in held_out],
        "versus_active": versus_active(category=category, held_out=held_out, answers=answers, truth=truth),
        "trained_at": timezone.now().isoformat(),
    }
    _drop_cut_terms(estimator)
    progress(0.9, "Storing the model")
    artifact: bytes = skops.io.dumps(estimator)
    metrics["training_seconds"] = round(time.monotonic() - started, 3)
    version = register_model_version(
        category=category,
        name=BUILTIN_NAME,
        version=next_builtin_version(category),
        user=user,
        status=ModelStatus.SHADOW,
        reason=f"Trained on {len(train)} gated labels, {len(held_out)} held out",
        notes="The built-in baseline model (TF-IDF, logistic regression, calibrated), trained by train_model.",
        metrics=metrics,
        artifact=artifact,
    )
    return TrainingResult(model_version=version, metrics=metrics, seconds=metrics["training_seconds"])
