"""bench/kpis.py's plan and fixture: what the cases are (`ROUTE_MIX`: per route its share, per outcome its
share of the route, and the decisions each outcome carries), the `Plan` the SQL follows (which ids are of which
kind, so the decision count is known in advance), and the people it creates through the services (reviewers,
escalation managers, the product owner whose token and session the pages use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from common import BenchError
from common_data import SENSITIVE_POLICY, create_bench_category, create_reviewer

CATEGORY_SLUG = "bench-metrics"
REVIEWERS = 12
MANAGERS = 2
OWNER = "bench-owner"

# What the cases are: per route its share of the cases, and per outcome its share of the route's cases.
ROUTE_MIX: dict[str, tuple[float, dict[str, float]]] = {
    "auto": (0.30, {"auto": 0.918, "confirmed": 0.076, "flagged": 0.004, "audit_pending": 0.002}),
    "quick_review": (
        0.44,
        {"approved": 0.78, "corrected": 0.12, "rejected": 0.04, "escalated": 0.03, "breached": 0.02, "waiting": 0.01},
    ),
    "full_review": (
        0.23,
        {
            "approved": 0.65,
            "corrected": 0.18,
            "rejected": 0.07,
            "escalated": 0.06,
            "breached": 0.02,
            "waiting": 0.015,
            "waiting_escalated": 0.005,
        },
    ),
    "shadow": (0.03, {"approved": 0.80, "corrected": 0.18, "waiting": 0.02}),
}
# The decisions a case of each outcome carries: its verdict, an escalation before it, an audit.
DECISIONS_PER_OUTCOME = {
    "auto": 0,
    "confirmed": 1,
    "flagged": 1,
    "audit_pending": 0,
    "approved": 1,
    "corrected": 1,
    "rejected": 1,
    "escalated": 2,
    "breached": 1,
    "waiting": 0,
    "waiting_escalated": 1,
}
PERMUTATION_PRIMES = (1_299_709, 15_485_863, 104_729, 7919)


# --- What the data is: a plan the SQL follows -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How many cases, and which ids are of which kind: a case's slot, (id * prime) mod cases, falls in one of
    the `bounds` (route, outcome, upper slot bound, in order), so each kind's count is exact and so is the number
    of decisions they carry."""

    cases: int
    prime: int
    bounds: tuple[tuple[str, str, int], ...]

    @classmethod
    def for_cases(cls, cases: int) -> Plan:
        bounds, cumulative = [], 0.0
        for route, (route_share, outcomes) in ROUTE_MIX.items():
            for outcome, share in outcomes.items():
                cumulative += route_share * share
                bounds.append((route, outcome, round(cumulative * cases)))
        route_last, outcome_last, _ = bounds[-1]
        bounds[-1] = (route_last, outcome_last, cases)  # the shares sum to 1; rounding never leaves a slot out
        prime = next((p for p in PERMUTATION_PRIMES if math.gcd(p, cases) == 1 and p % cases not in (0, 1)), None)
        if prime is None:
            raise BenchError(f"{cases} cases: no permutation prime fits; choose another size.")
        return cls(cases=cases, prime=prime, bounds=tuple(bounds))

    @classmethod
    def for_decisions(cls, decisions: int) -> Plan:
        """The fewest cases whose kinds carry at least `decisions` decisions (one more at most)."""
        per_case = sum(
            route_share * share * DECISIONS_PER_OUTCOME[outcome]
            for route_share, outcomes in ROUTE_MIX.values()
            for outcome, share in outcomes.items()
        )
        cases = max(int(decisions / per_case) - 50, 100)
        while cls.for_cases(cases).decisions < decisions:
            cases += 1
        return cls.for_cases(cases)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        low = 0
        for route, outcome, high in self.bounds:
            result[f"{route}/{outcome}"] = high - low
            low = high
        return result

    @property
    def decisions(self) -> int:
        return sum(n * DECISIONS_PER_OUTCOME[kind.split("/")[1]] for kind, n in self.counts().items())

    def slot(self, id_sql: str) -> str:
        return f"(({id_sql})::bigint * {self.prime}) % {self.cases}"

    def case_sql(self, id_sql: str, column: int) -> str:
        """A CASE over the slot of `id_sql` naming each id's route (column 0) or outcome (column 1)."""
        slot = self.slot(id_sql)
        whens = " ".join(f"WHEN {slot} < {high} THEN '{kind[column]}'" for *kind, high in self.bounds)
        return f"CASE {whens} END"


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    category_slug: str
    model_version_id: int
    queues: dict[str, int]  # kind -> id
    slas: dict[str, timedelta]  # kind -> SLA
    reviewer_ids: list[int]
    manager_ids: list[int]
    owner_id: int
    token: str


def create_fixture() -> Fixture:
    """The category with its queues and model version; reviewers, escalation managers, and the product owner whose
    token and session the API and dashboard requests use."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from governance.permissions import ESCALATION_MANAGER, PRODUCT_OWNER, REVIEWER

    bench = create_bench_category(slug=CATEGORY_SLUG, name="Bench metrics", policy=SENSITIVE_POLICY)
    q = bench.queues
    reviewer, manager, owner_group = (Group.objects.get(name=n) for n in (REVIEWER, ESCALATION_MANAGER, PRODUCT_OWNER))
    reviewers = [
        create_reviewer(f"bench-reviewer-{i:02d}", queues=[q["quick"], q["full"], q["audit"]], groups=[reviewer])
        for i in range(1, REVIEWERS + 1)
    ]
    managers = [
        create_reviewer(f"bench-manager-{i:02d}", queues=[q["escalation"], q["expert"]], groups=[manager])
        for i in range(1, MANAGERS + 1)
    ]
    owner = create_reviewer(OWNER, queues=[], groups=[owner_group])
    assign_perm("governance.change_category", owner, bench.category)
    return Fixture(
        category_id=bench.category.pk,
        category_slug=bench.category.slug,
        model_version_id=bench.model_version.pk,
        queues={kind: queue.pk for kind, queue in q.items()},
        slas={kind: queue.sla for kind, queue in q.items()},
        reviewer_ids=[u.pk for u in reviewers],
        manager_ids=[u.pk for u in managers],
        owner_id=owner.pk,
        token=Token.objects.create(user=owner).key,
    )
