"""How well a set of answers matches the truth on held-out cases: pure functions over plain lists (no database).

The built-in model and the active (external) model are measured by the same functions on the same cases, so
the promotion gate compares like with like. An "answer" is a predicted label and its confidence; a model may
also give a probability for every class, which the Brier score needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The candidate auto thresholds of DESIGN.md: 0.50 to 0.99 by 0.01, as two-decimal keys so JSON keeps them exact.
THRESHOLDS = tuple(round(0.50 + step / 100, 2) for step in range(50))
ECE_BINS = 10


@dataclass(frozen=True)
class Answer:
    """One model's answer on one case: the label it gave and how sure it said it was."""

    label: str
    confidence: float


def threshold_key(threshold: float) -> str:
    return f"{threshold:.2f}"


def accuracy(answers: Sequence[Answer], truth: Sequence[str]) -> float:
    if not truth:
        return 0.0
    return sum(a.label == t for a, t in zip(answers, truth, strict=True)) / len(truth)


def macro_f1(answers: Sequence[Answer], truth: Sequence[str]) -> float:
    """The unweighted mean of each true class's F1, so a rare class counts as much as a common one."""
    classes = sorted(set(truth))
    if not classes:
        return 0.0
    scores = []
    for cls in classes:
        tp = sum(a.label == cls and t == cls for a, t in zip(answers, truth, strict=True))
        fp = sum(a.label == cls and t != cls for a, t in zip(answers, truth, strict=True))
        fn = sum(a.label != cls and t == cls for a, t in zip(answers, truth, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def brier(probabilities: Sequence[Mapping[str, float]], truth: Sequence[str]) -> float:
    """Multi-class Brier score: the mean, over cases, of the squared distance between the probability vector and
    the one-hot truth (0 is perfect, 2 the worst)."""
    if not truth:
        return 0.0
    total = 0.0
    for probs, t in zip(probabilities, truth, strict=True):
        total += sum((p - (1.0 if cls == t else 0.0)) ** 2 for cls, p in probs.items())
        if t not in probs:
            total += 1.0  # a class the model never saw: probability 0 for the truth
    return total / len(truth)


def expected_calibration_error(answers: Sequence[Answer], truth: Sequence[str], bins: int = ECE_BINS) -> float:
    """How far stated confidence is from observed accuracy: the case-weighted mean gap over equal-width bins."""
    if not truth:
        return 0.0
    groups: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for a, t in zip(answers, truth, strict=True):
        groups[min(int(a.confidence * bins), bins - 1)].append((a.confidence, a.label == t))
    gap = 0.0
    for group in groups:
        if group:
            mean_confidence = sum(c for c, _ in group) / len(group)
            hit_rate = sum(ok for _, ok in group) / len(group)
            gap += abs(mean_confidence - hit_rate) * len(group)
    return gap / len(truth)


def at_threshold(answers: Sequence[Answer], truth: Sequence[str], threshold: float) -> dict[str, Any]:
    """What acting on its own at `threshold` would do: the share of cases that would act, and the share of those
    that would be wrong (None when nothing acts)."""
    acting = [a.label == t for a, t in zip(answers, truth, strict=True) if a.confidence >= threshold]
    return {
        "share": len(acting) / len(truth) if truth else 0.0,
        "error_rate": (len(acting) - sum(acting)) / len(acting) if acting else None,
        "acting": len(acting),
    }


def threshold_table(answers: Sequence[Answer], truth: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {threshold_key(t): at_threshold(answers, truth, t) for t in THRESHOLDS}
