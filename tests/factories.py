"""Test data, built through the same services the product uses wherever a service exists."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from cases.services.intake import IntakeItem, submit_case
from governance.choices import ModelStatus
from governance.models import Category, ModelVersion
from governance.services import create_category, register_model_version

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


def grant_submit(user: User | Group, category: Category) -> None:
    assign_perm("governance.submit_case", user, category)


def model_version(category: Category, label: str = "model@1") -> ModelVersion:
    name, version = label.split("@")
    return ModelVersion.objects.get(category=category, name=name, version=version)
