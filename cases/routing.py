"""The routing decision: one pure function, no database access, the same answer for the same facts.

`route_case` applies DESIGN.md's ten rules in order (the first that matches wins) and, for an `auto` case, draws
it for audit with a rate multiplied for strata that deserve more eyes. Every random choice is a hash of the
case's category, external id and policy version, so a replay or a test can predict it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from cases.choices import QUEUE_KIND_FOR_ROUTE, Route
from governance.choices import MODEL_STATUSES_THAT_MAY_ACT, ModelStatus, Pattern, Stage

# An auto case whose confidence is this close to the auto threshold is audited more (a borderline call).
NEAR_THRESHOLD_MARGIN = 0.02


@dataclass(frozen=True)
class CaseFacts:
    category_slug: str
    external_id: str
    label: str
    confidence: float
    value: Decimal | None = None
    rules_fired: tuple[str, ...] = ()


@dataclass(frozen=True)
class CategoryState:
    pattern: str
    stage: str
    paused: bool


@dataclass(frozen=True)
class PolicyRules:
    version: int
    auto_threshold: float
    review_threshold: float
    auto_share: float
    high_value_amount: Decimal | None
    sensitive_labels: frozenset[str]
    sensitive_rules: frozenset[str]
    audit_rate: float
    audit_multipliers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditContext:
    """Facts about the category's recent history that the audit strata need, looked up before routing."""

    top_decile_value: Decimal | None = None
    segment_is_new: bool = False


@dataclass(frozen=True)
class RoutingResult:
    route: str
    queue_kind: str | None
    reasons: tuple[str, ...]
    audit_sampled: bool
    draws: dict[str, object]


def draw(purpose: str, category_slug: str, external_id: str, policy_version: int) -> float:
    """A number in [0, 1) fixed by the case's identity and policy version: the same case always draws the same."""
    digest = hashlib.sha256(f"{purpose}|{category_slug}|{external_id}|{policy_version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pct(x: float) -> str:
    return f"{x:.2f}"


def _decide_route(
    facts: CaseFacts, category: CategoryState, policy: PolicyRules, model_status: str
) -> tuple[str, str, float | None]:
    """Rules 1-10 of DESIGN.md, in order: the route, the plain-words reason of the rule that matched, and the
    ramp draw when the ramp was consulted."""
    if category.stage == Stage.SHADOW:
        return Route.SHADOW, "The category is in shadow mode: the model never acts; a reviewer decides blind.", None
    if model_status == ModelStatus.SHADOW:
        return Route.SHADOW, "The model version is in shadow: it never acts; a reviewer decides blind.", None
    if model_status not in MODEL_STATUSES_THAT_MAY_ACT:
        return (
            Route.FULL_REVIEW,
            (f"The model version is {model_status}, not canary or active, so it may not act on its own."),
            None,
        )
    fired = sorted(set(facts.rules_fired) & policy.sensitive_rules)
    if fired:
        return Route.FULL_REVIEW, f"Sensitive rule fired: {', '.join(fired)}.", None
    if facts.label in policy.sensitive_labels:
        return Route.FULL_REVIEW, f"The predicted label {facts.label!r} is sensitive.", None
    if policy.high_value_amount is not None and facts.value is not None and facts.value >= policy.high_value_amount:
        return (
            Route.FULL_REVIEW,
            f"Value {facts.value} is at or above the high-value amount {policy.high_value_amount}.",
            None,
        )
    if facts.confidence < policy.review_threshold:
        return (
            Route.FULL_REVIEW,
            (f"Confidence {_pct(facts.confidence)} is below the review threshold {_pct(policy.review_threshold)}."),
            None,
        )
    if category.paused:
        return Route.QUICK_REVIEW, "The category is paused (human-first): nothing acts on its own.", None
    if facts.confidence < policy.auto_threshold:
        return (
            Route.QUICK_REVIEW,
            (f"Confidence {_pct(facts.confidence)} is below the auto threshold {_pct(policy.auto_threshold)}."),
            None,
        )
    if category.pattern == Pattern.VALIDATOR:
        return (
            Route.QUICK_REVIEW,
            "The category follows the validator pattern: every output is checked before it acts.",
            None,
        )
    ramp = draw("ramp", facts.category_slug, facts.external_id, policy.version)
    if ramp * 100 >= policy.auto_share:
        return (
            Route.QUICK_REVIEW,
            (f"Outside the automation ramp: only {policy.auto_share:g}% of eligible cases act on their own."),
            ramp,
        )
    return (
        Route.AUTO,
        (
            f"Confidence {_pct(facts.confidence)} meets the auto threshold {_pct(policy.auto_threshold)}: "
            "the output acts on its own."
        ),
        ramp,
    )


def audit_strata(facts: CaseFacts, policy: PolicyRules, model_status: str, context: AuditContext) -> list[str]:
    """The strata an auto case belongs to; each multiplies its audit rate."""
    strata = []
    if abs(facts.confidence - policy.auto_threshold) <= NEAR_THRESHOLD_MARGIN:
        strata.append("near_threshold")
    if context.top_decile_value is not None and facts.value is not None and facts.value >= context.top_decile_value:
        strata.append("top_decile_value")
    if context.segment_is_new:
        strata.append("new_segment")
    if model_status == ModelStatus.CANARY:
        strata.append("canary")
    return strata


def route_case(
    facts: CaseFacts,
    category: CategoryState,
    policy: PolicyRules,
    model_status: str,
    context: AuditContext | None = None,
) -> RoutingResult:
    """Route one case: where it goes, why, and (for `auto`) whether it is drawn for audit."""
    route, reason, ramp = _decide_route(facts, category, policy, model_status)
    reasons = [reason]
    draws: dict[str, object] = {}
    if ramp is not None:
        draws["ramp"] = round(ramp, 6)
    audit_sampled = False
    if route == Route.AUTO:
        strata = audit_strata(facts, policy, model_status, context or AuditContext())
        rate = policy.audit_rate
        for stratum in strata:
            rate *= float(policy.audit_multipliers.get(stratum, 1.0))
        rate = min(rate, 1.0)
        audit_value = draw("audit", facts.category_slug, facts.external_id, policy.version)
        audit_sampled = audit_value < rate
        draws.update({"audit": round(audit_value, 6), "audit_rate": round(rate, 6), "strata": strata})
        if audit_sampled:
            strata_text = f" (strata: {', '.join(strata)})" if strata else ""
            reasons.append(f"Drawn for audit at a rate of {rate:.1%}{strata_text}.")
    return RoutingResult(
        route=route,
        queue_kind=QUEUE_KIND_FOR_ROUTE[route],
        reasons=tuple(reasons),
        audit_sampled=audit_sampled,
        draws=draws,
    )


def double_review_draw(category_slug: str, external_id: str, policy_version: int) -> float:
    """The double-review draw of a human-decided case: the same hash as every other draw, with its own salt, so it
    is independent of the ramp and the audit draws of the same case (DESIGN.md, Feedback loop)."""
    return draw("double_review", category_slug, external_id, policy_version)


def draws_double_review(category_slug: str, external_id: str, policy_version: int, rate: float) -> bool:
    """Does this human-decided case get a second, blind review? True for a share `rate` (0-1) of cases, always the
    same answer for the same case and policy version; never at rate 0, always at rate 1."""
    return double_review_draw(category_slug, external_id, policy_version) < rate
