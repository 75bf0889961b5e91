"""Test data, built through the same services the product uses wherever a service exists."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import Group, User
from django.test import Client
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from cases.services.intake import IntakeItem, submit_case
from governance.choices import ModelStatus
from governance.models import Category, ModelVersion
from governance.services import create_category, promote_model_version, register_model_version
from reviews import services as review_services

_counter = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-word-123")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        for role in extracted or []:
            self.groups.add(Group.objects.get(name=role))


def make_category(
    slug: str | None = None,
    *,
    pattern: str = "exception",
    stage: str = "live",
    model: str | None = "model@1",
    model_status: str = ModelStatus.ACTIVE,
    **policy: Any,
) -> Category:
    """A category (with its five default queues) and, unless model=None, a model version in `model_status`."""
    slug = slug or f"cat-{next(_counter)}"
    category = create_category(
        user=None, slug=slug, name=slug.replace("-", " ").title(), pattern=pattern, stage=stage, policy=policy
    )
    if model:
        name, version = model.split("@")
        register_model_version(
            category=category, name=name, version=version, user=None, status=model_status, reason="test setup"
        )
    return category


def make_case(category: Category, **overrides: Any) -> Case:
    """Submit a case through the intake service (so it is routed like any other)."""
    fields: dict[str, Any] = {
        "external_id": f"ext-{next(_counter)}",
        "input": {"text": "Where is my order?"},
        "output": {"label": "shipping"},
        "confidence": 0.5,
        "model_version": "model@1",
    }
    fields.update(overrides)
    if fields.get("value") is not None:
        fields["value"] = Decimal(str(fields["value"]))
    case, _ = submit_case(user=None, item=IntakeItem(category=category, **fields))
    return case


def grant_queue(user: User | Group, queue: Queue) -> None:
    assign_perm("cases.work_queue", user, queue)


def login(user: User) -> Client:
    """A test client signed in as `user` (no password, no login form: what a page test starts from)."""
    client = Client()
    client.force_login(user)
    return client


def grant_submit(user: User | Group, category: Category) -> None:
    assign_perm("governance.submit_case", user, category)


def model_version(category: Category, label: str = "model@1") -> ModelVersion:
    name, version = label.split("@")
    return ModelVersion.objects.get(category=category, name=name, version=version)


# Words that tell the three topics apart (and filler that does not), for a labelled set a text model must learn.
TOPIC_WORDS = {
    "refund": ("refund", "money back", "reimburse", "chargeback"),
    "shipping": ("shipping", "parcel", "courier", "delivery"),
    "login": ("login", "password", "sign in", "two-factor"),
}
FILLER = ("please", "today", "my order", "again", "thanks", "urgent", "hello", "account", "since monday", "help")


def make_labelled_cases(
    category: Category,
    reviewer: User,
    *,
    n: int,
    wrong_every: int = 0,
    seed: int = 7,
    topics: Sequence[str] = tuple(sorted(TOPIC_WORDS)),
) -> list[Case]:
    """`n` cases whose topic (one of `topics`, TOPIC_WORDS's keys) shows in their words, each decided by `reviewer`
    (who must hold the queues): approved when the case's model got it right, corrected when not (every
    `wrong_every`-th case is wrong)."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = [rng.choice(FILLER), rng.choice(TOPIC_WORDS[topic]), rng.choice(FILLER), rng.choice(FILLER)]
        rng.shuffle(words)
        wrong = bool(wrong_every) and i % wrong_every == 0
        said = topics[(i + 1) % len(topics)] if wrong else topic
        case = make_case(
            category, input={"subject": f"Ticket {i}", "body": " ".join(words)}, output={"label": said}, confidence=0.8
        )
        if wrong:
            review_services.decide(case=case, user=reviewer, action="correct", output={"label": topic})
        else:
            review_services.decide(case=case, user=reviewer, action="approve")
        cases.append(case)
    return cases


def make_builtin(
    category: Category,
    *,
    status: str = ModelStatus.ACTIVE,
    n: int = 120,
    wrong_every: int = 4,
    topics: Sequence[str] = tuple(sorted(TOPIC_WORDS)),
) -> ModelVersion:
    """Train a built-in model for `category` on `n` separable labelled cases of `topics` (by a certified reviewer;
    the category's model is wrong on every `wrong_every`-th, so the built-in one beats it) and move it to
    `status`."""
    # Imported here: scikit-learn takes seconds to import, and most tests never train.
    from metrics.services.training import train_model

    reviewer = UserFactory(username=f"labeller-{category.slug}", roles=["Reviewer"])
    for queue in Queue.objects.filter(category=category):
        grant_queue(reviewer, queue)
    curator = UserFactory(username=f"curator-{category.slug}", roles=["Data Curator"])
    reviewer = User.objects.get(pk=reviewer.pk)
    review_services.certify(curator=curator, reviewer=reviewer, category=category, reason="Passed the calibration")
    make_labelled_cases(category, reviewer, n=n, wrong_every=wrong_every, topics=topics)
    version = train_model(category=category).model_version
    if status != ModelStatus.SHADOW:
        version = promote_model_version(model_version=version, status=status, user=None, reason="It beats model@1")
    return version
