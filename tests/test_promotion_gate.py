"""A built-in version goes past shadow only if it beats the active version on the same held-out cases (accuracy,
and error rate at the policy's auto threshold); the refusal says by how much (DESIGN.md, Feedback loop)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from cases.models import Queue
from governance.models import Category, ModelVersion
from governance.promotion_gate import promotion_shortfalls
from governance.services import promote_model_version, register_model_version
from metrics.services.training import train_model
from reviews import services
from tests.factories import grant_queue, make_category, make_labelled_cases


def figures(builtin: tuple[float, float | None], active: tuple[float, float | None], **extra: Any) -> dict[str, Any]:
    return {
        "versus_active": {
            "active": "model@1",
            "auto_threshold": 0.9,
            "n": 30,
            "builtin": {"accuracy": builtin[0], "error_rate": builtin[1]},
            "active_figures": {"accuracy": active[0], "error_rate": active[1]},
            "active_thresholds": {},
            **extra,
        }
    }


def test_a_better_builtin_passes() -> None:
    assert promotion_shortfalls(metrics=figures((0.95, 0.01), (0.80, 0.05)), active="model@1", auto_threshold=0.9) == []


def test_lower_accuracy_is_refused_with_the_shortfall() -> None:
    [reason] = promotion_shortfalls(metrics=figures((0.70, 0.0), (0.80, 0.05)), active="model@1", auto_threshold=0.9)
    assert reason == "accuracy 0.700 against 0.800 for model@1 on the same 30 held-out cases, short by 0.100"


def test_a_higher_error_rate_at_the_auto_threshold_is_refused() -> None:
    [reason] = promotion_shortfalls(metrics=figures((0.95, 0.08), (0.80, 0.05)), active="model@1", auto_threshold=0.9)
    assert reason == "error rate at the auto threshold 0.90 0.080 against 0.050 for model@1, 0.030 too high"


def test_a_tie_is_not_a_win() -> None:
    [reason] = promotion_shortfalls(metrics=figures((0.8, None), (0.8, 0.0)), active="model@1", auto_threshold=0.9)
    assert "only ties with model@1" in reason


def test_a_comparison_with_another_active_version_is_refused() -> None:
    [reason] = promotion_shortfalls(metrics=figures((0.95, 0.0), (0.8, 0.1)), active="model@2", auto_threshold=0.9)
    assert "measured against model@1, but model@2 is active now" in reason


def test_a_changed_threshold_reads_the_candidate_tables() -> None:
    metrics = figures((0.95, 0.0), (0.8, 0.0), active_thresholds={"0.80": {"error_rate": 0.02}})
    metrics["thresholds"] = {"0.80": {"error_rate": 0.04}}
    [reason] = promotion_shortfalls(metrics=metrics, active="model@1", auto_threshold=0.8)
    assert reason.startswith("error rate at the auto threshold 0.80 0.040 against 0.020")
    assert "not measured" in promotion_shortfalls(metrics=metrics, active="model@1", auto_threshold=0.875)[0]


def test_nothing_active_means_nothing_to_beat() -> None:
    assert promotion_shortfalls(metrics={}, active=None, auto_threshold=0.9) == []


@given(
    acc=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    err=st.tuples(st.floats(0, 1) | st.none(), st.floats(0, 1) | st.none()),
)
def test_it_passes_exactly_when_no_worse_on_both_and_better_on_one(
    acc: tuple[float, float], err: tuple[float | None, float | None]
) -> None:
    metrics = figures((acc[0], err[0]), (acc[1], err[1]))
    b_err, a_err = err[0] or 0.0, err[1] or 0.0
    beats = acc[0] >= acc[1] and b_err <= a_err and (acc[0] > acc[1] or b_err < a_err)
    assert (promotion_shortfalls(metrics=metrics, active="model@1", auto_threshold=0.9) == []) == beats


# --- through the promotion service, on trained data ---


@pytest.fixture
def category(db: None) -> Category:
    return make_category("gate", auto_threshold=0.9, review_threshold=0.6)


@pytest.fixture
def reviewer(make_user: Any, category: Category) -> User:
    user: User = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(user, queue)
    curator: User = make_user("curator", roles=["Data Curator"])
    services.certify(curator=curator, reviewer=user, category=category, reason="calibrated")
    return User.objects.get(pk=user.pk)


@pytest.mark.django_db
def test_a_trained_builtin_that_beats_the_active_model_is_promoted(category: Category, reviewer: User) -> None:
    make_labelled_cases(category, reviewer, n=90, wrong_every=3)  # the external model is wrong on a third
    version = train_model(category=category).model_version
    promote_model_version(model_version=version, status="canary", user=None, reason="beats model@1")
    promote_model_version(model_version=version, status="active", user=None, reason="beats model@1")
    assert ModelVersion.objects.get(category=category, name="model").status == "retired"


@pytest.mark.django_db
def test_a_builtin_worse_than_the_active_model_stays_in_shadow(category: Category, reviewer: User) -> None:
    make_labelled_cases(category, reviewer, n=90)  # the external model is always right
    version = train_model(category=category).model_version
    # Make the stored comparison say the built-in model is worse than the active one by 0.2.
    version.metrics["versus_active"]["builtin"]["accuracy"] = (
        version.metrics["versus_active"]["active_figures"]["accuracy"] - 0.2
    )
    ModelVersion.objects.filter(pk=version.pk).update(metrics=version.metrics)
    with pytest.raises(ValidationError) as refused:
        promote_model_version(model_version=version, status="active", user=None, reason="try")
    [message] = refused.value.message_dict["status"]
    assert message.startswith("builtin@1 may not go to active, it does not beat model@1: accuracy 0.800 against 1.000")
    assert "short by 0.200" in message
    version.refresh_from_db()
    assert version.status == "shadow"


@pytest.mark.django_db
def test_other_models_are_promoted_without_the_gate(category: Category) -> None:
    version = register_model_version(category=category, name="vendor", version="2", user=None, status="shadow")
    promote_model_version(model_version=version, status="active", user=None, reason="vendor rollout")
