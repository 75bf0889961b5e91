"""Intake: one case or many, validated items in, routed cases out.

Intake is idempotent on (category, external_id), also when two requests with the same id race: the database's
unique constraint decides, the loser gets the winner's case back. The admin, the API, the demo seed and
benchmarks all submit through `submit_case` / `submit_cases`.

- `item`: what a submission is once validated (`IntakeItem`);
- `router`: one read of a category's state, policy, queues, model versions and recent history, and the routing of
  each item against it (the pure `cases.routing.route_case` decides);
- `submit`: who may submit where, and storing the routed cases with their history and audit events.
"""

from cases.services.intake.item import IntakeItem
from cases.services.intake.router import segment_key
from cases.services.intake.submit import (
    SUBMIT_PERM,
    not_submittable_message,
    submit_case,
    submit_cases,
    submittable_categories,
)

__all__ = [
    "SUBMIT_PERM",
    "IntakeItem",
    "not_submittable_message",
    "segment_key",
    "submit_case",
    "submit_cases",
    "submittable_categories",
]
