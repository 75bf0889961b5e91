"""bench/sweep.py's fixture: how many cases of each kind a size has (`Mix`: overdue and free to move,
overdue under a live claim, escalated with the breach already recorded, waiting), the data's timing around its
anchor, and what it creates through the services first (the categories with their default queues and active
model versions, the integration user, the reviewers the sweep notifies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from common import BenchError
from common_data import create_bench_category, create_integration_user, create_reviewer

CATEGORY_PREFIX = "bench-sweep"
REVIEWERS_PER_CATEGORY = 3
DUE_GAP = timedelta(minutes=30)  # a case not overdue is due at least this long after the anchor
PREVIOUS_SWEEP = timedelta(minutes=1)  # the warnings made "a minute ago", before the timed sweep

PERMUTATION_PRIMES = (7919, 104_729, 1_299_709, 15_485_863)


# --- Sizes and the fixture ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """How many cases of each kind: overdue and free to move, overdue under a live claim, escalated and overdue
    with the breach already recorded, and the rest waiting (not overdue)."""

    open: int
    overdue: int
    held: int
    stale: int

    @classmethod
    def for_size(cls, open_cases: int, overdue: int) -> Mix:
        return cls(open=open_cases, overdue=overdue, held=overdue // 20, stale=overdue // 10)

    @property
    def waiting(self) -> int:
        return self.open - self.overdue - self.held - self.stale

    def prime(self) -> int:
        """A multiplier coprime to the size: i * p mod n is a permutation of the ids."""
        for p in PERMUTATION_PRIMES:
            if math.gcd(p, self.open) == 1:
                return p
        raise BenchError(f"--open {self.open}: no permutation prime fits; choose another size.")


@dataclass(frozen=True)
class Fixture:
    category_ids: list[int]
    category_slugs: list[str]
    model_version_ids: list[int]
    queues: dict[str, list[int]]  # kind -> one id per category, in category order
    slas: dict[str, timedelta]  # kind -> SLA (the same in every category: the defaults)
    integration_id: int
    reviewer_ids: list[int]


def create_fixture(categories: int) -> Fixture:
    """The categories (their default queues and an active model version each), the integration user, and three
    reviewers per category working its quick, full and escalation queues (the people the sweep notifies)."""
    from governance.history import system_user

    system_user()  # in production it exists after the first job run
    integration = create_integration_user()
    category_ids, slugs, versions, reviewers = [], [], [], []
    queues: dict[str, list[int]] = {}
    slas: dict[str, timedelta] = {}
    for c in range(1, categories + 1):
        bench = create_bench_category(slug=f"{CATEGORY_PREFIX}-{c}", name=f"Bench sweep {c}")
        for kind, queue in bench.queues.items():
            queues.setdefault(kind, []).append(queue.pk)
            slas[kind] = queue.sla
        worked = [bench.queues[kind] for kind in ("quick", "full", "escalation") if kind in bench.queues]
        for r in range(1, REVIEWERS_PER_CATEGORY + 1):
            reviewers.append(create_reviewer(f"bench-reviewer-{c}-{r}", queues=worked).pk)
        category_ids.append(bench.category.pk)
        slugs.append(bench.category.slug)
        versions.append(bench.model_version.pk)
    for kind in ("quick", "full", "escalation"):
        if kind not in queues:
            raise BenchError(f"create_category made no {kind} queue: the default queues changed?")
    return Fixture(
        category_ids=category_ids,
        category_slugs=slugs,
        model_version_ids=versions,
        queues=queues,
        slas=slas,
        integration_id=integration.pk,
        reviewer_ids=reviewers,
    )
