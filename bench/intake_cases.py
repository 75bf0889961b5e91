"""What bench/intake.py submits: the fixture (the category with varied routes, its active model version, the
integration user with its grant and DRF token), one realistic case body (confidences spread over the three
bands), and the IntakeItem the API's serializer would build from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from common_data import (
    CHANNELS,
    LABELS,
    LOCALES,
    MODEL_LABEL,
    REGIONS,
    RULES,
    SENSITIVE_POLICY,
    TEXTS,
    TIERS,
    create_bench_category,
    create_integration_user,
)

if TYPE_CHECKING:
    from cases.services.intake import IntakeItem
    from governance.models import Category


CATEGORY_SLUG = "bench-intake"
BULK_BATCH = 500


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    model_version_id: int
    quick_queue_id: int
    user_id: int
    token: str


def create_fixture() -> Fixture:
    """The category (varied routes: sensitive label and rule, high-value limit, an 80 % ramp), its active model
    version, and the integration user with governance.submit_case on it and a DRF token."""
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    bench = create_bench_category(
        slug=CATEGORY_SLUG, name="Bench intake", policy={**SENSITIVE_POLICY, "high_value_amount": Decimal("5000.00")}
    )
    user = create_integration_user()
    assign_perm("governance.submit_case", user, bench.category)
    token = Token.objects.create(user=user)
    return Fixture(
        category_id=bench.category.pk,
        model_version_id=bench.model_version.pk,
        quick_queue_id=bench.queues["quick"].pk,
        user_id=user.pk,
        token=token.key,
    )


# --- Request bodies -------------------------------------------------------------------------------------------


def case_body(rng: random.Random, external_id: str) -> dict[str, Any]:
    """One realistic submission; confidences spread over the full-review, quick-review and auto bands."""
    label = rng.choices(LABELS, weights=(30, 25, 20, 15, 8, 2))[0]
    band = rng.random()
    if band < 0.2:
        confidence = rng.uniform(0.3, 0.6)
    elif band < 0.5:
        confidence = rng.uniform(0.6, 0.9)
    else:
        confidence = rng.uniform(0.9, 1.0)
    confidence = round(confidence, 4)
    body: dict[str, Any] = {
        "category": CATEGORY_SLUG,
        "external_id": external_id,
        "input": {
            "text": rng.choice(TEXTS),
            "order_id": f"ORD-{rng.randint(100000, 999999)}",
            "locale": rng.choice(LOCALES),
            "attachments": rng.randint(0, 3),
        },
        "output": {
            "label": label,
            "text": f"Classified as {label}.",
            "reasoning": f"The message mentions {label.replace('_', ' ')}-related terms.",
            "score": confidence,
        },
        "confidence": confidence,
        "model_version": MODEL_LABEL,
        "segment": {"channel": rng.choice(CHANNELS), "tier": rng.choice(TIERS), "region": rng.choice(REGIONS)},
        "priority": "urgent" if rng.random() < 0.05 else "normal",
        "customer_ref": f"cust-{rng.randint(1, 20000)}",
    }
    if rng.random() < 0.3:
        body["rules_fired"] = rng.sample(RULES, rng.randint(1, 2))
    if rng.random() < 0.7:
        body["value"] = f"{rng.lognormvariate(4.5, 1.2):.2f}"
    return body


def intake_item(body: dict[str, Any], category: Category) -> IntakeItem:
    """The IntakeItem the API's serializer would build from this body."""
    from cases.services.intake import IntakeItem

    value = body.get("value")
    return IntakeItem(
        category=category,
        external_id=body["external_id"],
        input=body["input"],
        output=body["output"],
        confidence=body["confidence"],
        model_version=body["model_version"],
        rules_fired=body.get("rules_fired", []),
        value=Decimal(value) if value is not None else None,
        segment=body.get("segment", {}),
        priority=body.get("priority", "normal"),
        customer_ref=body.get("customer_ref", ""),
    )
