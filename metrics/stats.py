"""Small, pure statistics used by the KPIs and alert rules (no database access)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 1) when nothing was observed."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, over equal-width bins of [0, 1].

    0 means the same distribution; 0.1-0.2 a moderate shift; >= 0.2 is drift. Empty bins get a small floor so
    the logarithm stays finite.
    """
    if not reference or not current:
        return 0.0

    def shares(values: Sequence[float]) -> list[float]:
        counts = [0] * bins
        for value in values:
            counts[min(int(value * bins), bins - 1) if value >= 0 else 0] += 1
        return [max(c / len(values), 1e-4) for c in counts]

    expected, actual = shares(reference), shares(current)
    return sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
