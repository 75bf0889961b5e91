"""bench/load.py's fixture, made through the services: two live categories with their queues and active
model versions, the integration user with its grants and token, and a reviewer and an escalation manager per
locust user, each with a token (the tokens go to the traffic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common_data import SENSITIVE_POLICY, create_bench_category, create_integration_user, create_reviewer

CATEGORY_SLUGS = ("bench-load-a", "bench-load-b")


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    categories: list[dict[str, Any]]  # slug, queues (kind -> slug)
    tokens: dict[str, Any]  # integration: [token]; reviewer, manager: [{username, token}]


def create_fixture(people: int) -> Fixture:
    """Two categories, the integration user, and `people` reviewers and as many escalation managers (a locust user
    each: two users sharing an account would be handed the same case by claim-next, which gives you your own
    claimed case first)."""
    from django.contrib.auth.models import Group, User
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from governance.permissions import ESCALATION_MANAGER, REVIEWER

    policy = {**SENSITIVE_POLICY, "high_value_amount": "5000.00"}
    benches = [create_bench_category(slug=slug, name=f"Bench {slug}", policy=policy) for slug in CATEGORY_SLUGS]
    integration = create_integration_user()
    for bench in benches:
        assign_perm("governance.submit_case", integration, bench.category)

    def people_of(role: str, prefix: str, kinds: tuple[str, ...]) -> list[dict[str, str]]:
        group = Group.objects.get(name=role)
        queues = [bench.queues[kind] for bench in benches for kind in kinds]
        made: list[User] = [create_reviewer(f"{prefix}-{i:03d}", queues=queues, groups=[group]) for i in range(people)]
        return [{"username": u.username, "token": Token.objects.create(user=u).key} for u in made]

    return Fixture(
        categories=[
            {"slug": bench.category.slug, "queues": {kind: q.slug for kind, q in bench.queues.items()}}
            for bench in benches
        ],
        tokens={
            "integration": [Token.objects.create(user=integration).key],
            "reviewer": people_of(REVIEWER, "bench-load-reviewer", ("quick", "full", "audit")),
            "manager": people_of(ESCALATION_MANAGER, "bench-load-manager", ("escalation", "expert")),
        },
    )
