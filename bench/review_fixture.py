"""bench/review.py's fixture: how many cases wait in each queue at a size (`Backlog`), and what it creates
through the services before generating anything (the category with its default queues and an active model
version, the integration user, the page reviewer, one reviewer per claim-next thread and the reviewers who
decided the history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common_data import SENSITIVE_POLICY, create_bench_category, create_integration_user, create_reviewer

if TYPE_CHECKING:
    from django.contrib.auth.models import User


CATEGORY_SLUG = "bench-review"
PAGE_REVIEWER = "bench-page-reviewer"
HISTORIC_REVIEWERS = 10  # decision actors and holders of other claims, besides the claim-next threads' reviewers


# --- Sizes and the shape of the data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """How many cases wait in each queue: a backlog that grows far slower than the history."""

    quick: int
    full: int
    escalation: int
    expert: int
    audit: int

    @classmethod
    def for_size(cls, n: int) -> Backlog:
        return cls(
            quick=max(2500, n // 200),
            full=max(1000, n // 500),
            escalation=max(150, n // 5000),
            expert=max(50, n // 20000),
            audit=max(300, n // 2000),
        )

    @property
    def total(self) -> int:
        return self.quick + self.full + self.escalation + self.expert + self.audit


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    category_slug: str
    model_version_id: int
    queues: dict[str, int]  # kind -> id
    integration_id: int
    page_reviewer_id: int
    claim_reviewer_ids: list[int]
    historic_reviewer_ids: list[int]


def create_fixture(threads: int) -> Fixture:
    """The category (with its default queues and an active model version), and the people: an integration user,
    the page reviewer, one reviewer per claim thread and a few more who decided the history (all staff, in the
    Reviewer group, with cases.work_queue on the quick queue)."""
    from django.contrib.auth.models import Group

    from governance.permissions import REVIEWER

    bench = create_bench_category(slug=CATEGORY_SLUG, name="Bench review", policy=SENSITIVE_POLICY)
    queues = bench.queues
    group = Group.objects.get(name=REVIEWER)

    def reviewer(username: str) -> User:
        return create_reviewer(username, queues=[queues["quick"]], groups=[group])

    integration = create_integration_user()
    page = reviewer(PAGE_REVIEWER)
    claimers = [reviewer(f"bench-reviewer-{i:02d}") for i in range(1, threads + 1)]
    historic = [reviewer(f"bench-past-reviewer-{i:02d}") for i in range(1, HISTORIC_REVIEWERS + 1)]
    return Fixture(
        category_id=bench.category.pk,
        category_slug=bench.category.slug,
        model_version_id=bench.model_version.pk,
        queues={kind: q.pk for kind, q in queues.items()},
        integration_id=integration.pk,
        page_reviewer_id=page.pk,
        claim_reviewer_ids=[u.pk for u in claimers],
        historic_reviewer_ids=[u.pk for u in historic],
    )
