"""The pure routing function: its invariants, by property-based testing, and its deterministic draws."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from cases.choices import Route
from cases.routing import AuditContext, CaseFacts, CategoryState, PolicyRules, draw, route_case
from governance.choices import ModelStatus, Pattern, Stage

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
labels = st.sampled_from(["shipping", "refund", "legal", "billing"])
rules = st.lists(st.sampled_from(["mentions_lawyer", "vip", "profanity"]), max_size=3)
money = st.one_of(st.none(), st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False))


@st.composite
def policies(draw_: st.DrawFn) -> PolicyRules:
    review = draw_(st.floats(min_value=0.0, max_value=0.99, allow_nan=False))
    auto = draw_(st.floats(min_value=review + 0.001, max_value=1.0, allow_nan=False))
    return PolicyRules(
        version=draw_(st.integers(min_value=1, max_value=50)),
        auto_threshold=auto,
        review_threshold=review,
        auto_share=draw_(st.floats(min_value=0, max_value=100, allow_nan=False)),
        high_value_amount=draw_(money),
        sensitive_labels=frozenset(draw_(st.lists(labels, max_size=2))),
        sensitive_rules=frozenset(draw_(st.lists(st.sampled_from(["mentions_lawyer", "vip"]), max_size=2))),
        audit_rate=draw_(unit),
        audit_multipliers={"near_threshold": 3.0, "top_decile_value": 2.0, "new_segment": 2.0, "canary": 3.0},
    )


facts_strategy = st.builds(
    CaseFacts,
    category_slug=st.sampled_from(["support-triage", "refund-requests"]),
    external_id=st.text(min_size=1, max_size=20),
    label=labels,
    confidence=unit,
    value=money,
    rules_fired=rules.map(tuple),
)
categories = st.builds(
    CategoryState,
    pattern=st.sampled_from(list(Pattern.values)),
    stage=st.sampled_from(list(Stage.values)),
    paused=st.booleans(),
)
model_statuses = st.sampled_from(list(ModelStatus.values))
contexts = st.builds(AuditContext, top_decile_value=money, segment_is_new=st.booleans())


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_every_case_gets_exactly_one_known_route_with_reasons(facts, category, policy, status, context):
    result = route_case(facts, category, policy, status, context)
    assert result.route in Route.values
    assert result.reasons and all(isinstance(r, str) and r for r in result.reasons)
    assert (result.queue_kind is None) == (result.route == Route.AUTO)


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_a_paused_category_never_routes_auto(facts, category, policy, status, context):
    paused = CategoryState(pattern=category.pattern, stage=category.stage, paused=True)
    assert route_case(facts, paused, policy, status, context).route != Route.AUTO


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_nothing_under_the_review_threshold_is_ever_auto(facts, category, policy, status, context):
    result = route_case(facts, category, policy, status, context)
    if facts.confidence < policy.review_threshold:
        assert result.route in (Route.FULL_REVIEW, Route.SHADOW)


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_a_case_that_is_not_auto_is_never_audit_sampled(facts, category, policy, status, context):
    result = route_case(facts, category, policy, status, context)
    if result.route != Route.AUTO:
        assert result.audit_sampled is False


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_the_same_facts_always_give_the_same_answer(facts, category, policy, status, context):
    assert route_case(facts, category, policy, status, context) == route_case(facts, category, policy, status, context)


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_auto_share_zero_never_yields_auto(facts, category, policy, status, context):
    closed = PolicyRules(**{**policy.__dict__, "auto_share": 0.0})
    assert route_case(facts, category, closed, status, context).route != Route.AUTO


@given(facts_strategy, categories, policies(), model_statuses, contexts)
def test_only_canary_or_active_models_act_on_their_own(facts, category, policy, status, context):
    if route_case(facts, category, policy, status, context).route == Route.AUTO:
        assert status in (ModelStatus.CANARY, ModelStatus.ACTIVE)
        assert facts.confidence >= policy.auto_threshold
        assert category.pattern != Pattern.VALIDATOR
        assert category.stage == Stage.LIVE


@given(st.text(), st.text(), st.integers(min_value=1))
def test_draws_are_in_the_unit_interval_and_repeatable(slug, external_id, version):
    value = draw("audit", slug, external_id, version)
    assert 0 <= value < 1
    assert value == draw("audit", slug, external_id, version)


def test_draws_differ_by_purpose_and_policy_version():
    assert draw("audit", "c", "x", 1) != draw("ramp", "c", "x", 1)
    assert draw("audit", "c", "x", 1) != draw("audit", "c", "x", 2)


def _auto_policy(**overrides: object) -> PolicyRules:
    base = {
        "version": 1,
        "auto_threshold": 0.9,
        "review_threshold": 0.6,
        "auto_share": 100.0,
        "high_value_amount": None,
        "sensitive_labels": frozenset(),
        "sensitive_rules": frozenset(),
        "audit_rate": 0.02,
        "audit_multipliers": {"near_threshold": 3.0, "top_decile_value": 2.0, "new_segment": 2.0, "canary": 3.0},
    }
    base.update(overrides)
    return PolicyRules(**base)  # type: ignore[arg-type]


LIVE = CategoryState(pattern=Pattern.EXCEPTION, stage=Stage.LIVE, paused=False)


def test_audit_rate_is_multiplied_for_each_stratum():
    facts = CaseFacts("c", "x", "shipping", confidence=0.91, value=Decimal("900"))
    context = AuditContext(top_decile_value=Decimal("800"), segment_is_new=True)
    result = route_case(facts, LIVE, _auto_policy(), ModelStatus.CANARY, context)
    assert result.route == Route.AUTO
    assert result.draws["strata"] == ["near_threshold", "top_decile_value", "new_segment", "canary"]
    assert result.draws["audit_rate"] == round(0.02 * 3 * 2 * 2 * 3, 6)


def test_the_audit_draw_is_predictable_from_category_external_id_and_policy_version():
    facts = CaseFacts("c", "case-42", "shipping", confidence=0.99)
    result = route_case(facts, LIVE, _auto_policy(audit_rate=0.5), ModelStatus.ACTIVE)
    assert result.audit_sampled == (draw("audit", "c", "case-42", 1) < 0.5)


def test_the_ramp_lets_through_about_its_share():
    policy = _auto_policy(auto_share=30.0)
    routes = [
        route_case(CaseFacts("c", f"id-{i}", "x", 0.99), LIVE, policy, ModelStatus.ACTIVE).route for i in range(2000)
    ]
    share = routes.count(Route.AUTO) / len(routes)
    assert 0.26 < share < 0.34


def test_the_first_matching_rule_wins():
    # Both "low confidence" (rule 5) and "paused" (rule 6) apply: rule 5 wins.
    paused = CategoryState(pattern=Pattern.EXCEPTION, stage=Stage.LIVE, paused=True)
    result = route_case(CaseFacts("c", "x", "a", confidence=0.1), paused, _auto_policy(), ModelStatus.ACTIVE)
    assert result.route == Route.FULL_REVIEW
    assert "review threshold" in result.reasons[0]
