"""Agreement between reviewers, from double reviews: Cohen's kappa per category, per reviewer pair and per
reviewer, each with its n (DESIGN.md, Feedback loop).

The database counts (`DoubleReviewQuerySet.pair_counts`: one row per combination of reviewers and labels, never one
per review); this module only combines those few rows, with pure functions a test can check by hand. It lives in
reviews, the layer of double review, so the curators' admin here and the KPIs above read the same figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Landis & Koch: 0.61 and above is "substantial" agreement; anything below is shown as weak.
WEAK_KAPPA = 0.61


def cohens_kappa(counts: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa of two raters from how often (rater A said a, rater B said b): (p_o - p_e) / (1 - p_e).

    None when there is nothing to compare, or when chance alone explains everything (p_e = 1: both raters gave one
    and the same label every time), where kappa is undefined rather than perfect or null.
    """
    n = sum(counts.values())
    if n <= 0:
        return None
    observed = sum(count for (a, b), count in counts.items() if a == b) / n
    by_a: Counter[str] = Counter()
    by_b: Counter[str] = Counter()
    for (a, b), count in counts.items():
        by_a[a] += count
        by_b[b] += count
    expected = sum(by_a[label] * by_b[label] for label in by_a) / (n * n)
    if expected >= 1:
        return None
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class Agreement:
    """One kappa with what it stands on."""

    n: int
    kappa: float | None

    @property
    def weak(self) -> bool:
        """Below "substantial" (0.61); an undefined kappa is not called weak."""
        return self.kappa is not None and self.kappa < WEAK_KAPPA

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int]) -> Agreement:
        kappa = cohens_kappa(counts)
        return cls(n=sum(counts.values()), kappa=None if kappa is None else round(kappa, 4))

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "kappa": self.kappa, "weak": self.weak}


@dataclass(frozen=True)
class AgreementFigures:
    """Agreement over a set of paired double reviews: all of them, per reviewer pair (usernames in order), and per
    reviewer (against whoever they were paired with)."""

    overall: Agreement
    pairs: dict[tuple[str, str], Agreement] = field(default_factory=dict)
    reviewers: dict[str, Agreement] = field(default_factory=dict)

    def as_dict(self, *, only_for: str | None = None) -> dict[str, Any]:
        """The KPIs' `agreement` object; `only_for` (a username) keeps only that person's pairs and row."""
        return {
            **self.overall.as_dict(),
            "pairs": [
                {"reviewers": list(pair), **figure.as_dict()}
                for pair, figure in self.pairs.items()
                if only_for is None or only_for in pair
            ],
            "reviewers": [
                {"username": username, **figure.as_dict()}
                for username, figure in self.reviewers.items()
                if only_for is None or only_for == username
            ],
        }


def agreement_from_counts(rows: Iterable[Mapping[str, Any]]) -> AgreementFigures:
    """Combine grouped rows (`first`, `second`: the two usernames; `first_said`, `second_said`: their labels; `n`)
    into kappas. Each pair is one pair whichever of the two decided first; kappa does not depend on the order."""
    overall: Counter[tuple[str, str]] = Counter()
    pairs: defaultdict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    people: defaultdict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for row in rows:
        first, second, n = str(row["first"]), str(row["second"]), int(row["n"])
        first_said, second_said = str(row["first_said"]), str(row["second_said"])
        overall[first_said, second_said] += n
        if first <= second:
            pairs[first, second][first_said, second_said] += n
        else:
            pairs[second, first][second_said, first_said] += n
        people[first][first_said, second_said] += n
        people[second][second_said, first_said] += n
    return AgreementFigures(
        overall=Agreement.of(overall),
        pairs={pair: Agreement.of(counts) for pair, counts in sorted(pairs.items())},
        reviewers={username: Agreement.of(counts) for username, counts in sorted(people.items())},
    )


def agreement_by_category(rows: Iterable[Mapping[str, Any]]) -> dict[int, AgreementFigures]:
    """`agreement_from_counts` per `category_id` of the rows."""
    grouped: defaultdict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[int(row["category_id"])].append(row)
    return {category_id: agreement_from_counts(group) for category_id, group in grouped.items()}
