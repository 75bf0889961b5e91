"""What one submission is once validated: the API's serializer, the demo seed and benchmarks build these."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from governance.models import Category


@dataclass(frozen=True)
class IntakeItem:
    """One validated submission.

    `output` and `confidence` are None together when the category's active built-in model is to answer the case
    (`model_version` then empty or that model's); intake fills them in before routing."""

    category: Category
    external_id: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    confidence: float | None
    model_version: str
    rules_fired: list[str] = field(default_factory=list)
    value: Decimal | None = None
    segment: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"
    customer_ref: str = ""
