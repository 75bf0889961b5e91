"""The built-in model trains on a category's gated labels, split by time, and is registered in shadow with its
held-out figures; data too thin is a clear refusal, by the service and by `runjob` (DESIGN.md, Feedback loop)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from cases.models import Queue
from governance.choices import AuditKind
from governance.models import AuditEvent, Category
from governance.predictor import load_predictor
from metrics.evaluation import THRESHOLDS
from metrics.services.training import TrainingRefused, train_model
from reviews import services
from reviews.models import Label
from tests.factories import grant_queue, make_category, make_labelled_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("tickets", auto_threshold=0.9, review_threshold=0.6)


@pytest.fixture
def reviewer(make_user: Any, category: Category) -> User:
    user: User = make_user("rev", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(user, queue)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def certified(make_user: Any, category: Category, reviewer: User) -> User:
    curator: User = make_user("curator", roles=["Data Curator"])
    services.certify(curator=curator, reviewer=reviewer, category=category, reason="Passed the calibration set")
    return reviewer


def test_training_on_separable_labels_gives_an_accurate_shadow_builtin(category: Category, certified: User) -> None:
    cases = make_labelled_cases(category, certified, n=150, wrong_every=4)
    result = train_model(category=category)
    version, metrics = result.model_version, result.metrics
    assert (version.label, version.status) == ("builtin@1", "shadow")
    assert metrics["accuracy"] >= 0.9
    keys = {"n", "accuracy", "macro_f1", "brier", "ece", "thresholds", "held_out_cases", "versus_active"}
    assert keys <= set(metrics)
    assert (metrics["n"], metrics["n_train"]) == (30, 120)
    # The newest 20 % are held out: the last cases labelled.
    assert metrics["held_out_cases"] == [case.pk for case in cases[-30:]]
    assert set(metrics["thresholds"]) == {f"{t:.2f}" for t in THRESHOLDS} and len(THRESHOLDS) == 50
    assert set(metrics["thresholds"]["0.50"]) == {"share", "error_rate", "acting"}
    assert 0 <= metrics["brier"] <= 2 and 0 <= metrics["ece"] <= 1
    versus = metrics["versus_active"]
    assert versus["active"] == "model@1" and versus["auto_threshold"] == 0.9
    assert versus["active_figures"]["accuracy"] == pytest.approx(22 / 30)  # every 4th case's model was wrong
    version.refresh_from_db()
    assert version.metrics == metrics
    assert load_predictor(version).predict(["my parcel never arrived, courier lost it"])[0][0] == "shipping"
    assert AuditEvent.objects.filter(kind=AuditKind.MODEL_REGISTERED, payload__model_version="builtin@1").exists()


def test_only_gated_labels_count(category: Category, reviewer: User) -> None:
    make_labelled_cases(category, reviewer, n=60)  # an uncertified reviewer: none pass the gate
    assert Label.objects.filter(category=category).count() == 60
    with pytest.raises(TrainingRefused, match="Only 0 gated labels; training needs at least 50"):
        train_model(category=category)


def test_it_refuses_too_few_labels(category: Category, certified: User) -> None:
    make_labelled_cases(category, certified, n=40)
    with pytest.raises(TrainingRefused, match="Only 40 gated labels"):
        train_model(category=category)


def test_it_refuses_a_label_class_with_fewer_than_five(category: Category, certified: User) -> None:
    make_labelled_cases(category, certified, n=60)
    Label.objects.filter(category=category, label="login").exclude(
        pk__in=Label.objects.filter(category=category, label="login").order_by("id")[:3]
    ).update(label="refund")
    with pytest.raises(TrainingRefused, match="'login' has 3"):
        train_model(category=category)


def test_runjob_refuses_with_the_reason_and_a_non_zero_exit(category: Category, certified: User) -> None:
    make_labelled_cases(category, certified, n=10)
    out = StringIO()
    with pytest.raises(CommandError, match="train_model' refused: Only 10 gated labels"):
        call_command("runjob", "train_model", "--category", "tickets", stdout=out)
    assert '"ok": false' in out.getvalue()


def test_runjob_trains_the_category_it_is_given(category: Category, certified: User) -> None:
    make_labelled_cases(category, certified, n=60)
    out = StringIO()
    call_command("runjob", "train_model", "--category", "tickets", stdout=out)
    assert '"model_version": "builtin@1"' in out.getvalue()


def test_runjob_wants_a_category_for_train_model_and_none_for_the_others(category: Category) -> None:
    with pytest.raises(CommandError, match="give --category SLUG"):
        call_command("runjob", "train_model", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown category 'nope'"):
        call_command("runjob", "train_model", "--category", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="takes no --category"):
        call_command("runjob", "sla_sweep", "--category", "tickets", stdout=StringIO())
