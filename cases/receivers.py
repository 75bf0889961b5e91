"""The cases layer's answers to signals from governance (which sits below and may not import us)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from cases.services.queues import create_default_queues
from governance.models import Category
from governance.signals import category_created


@receiver(category_created, sender=Category, dispatch_uid="cases.create_default_queues")
def give_new_category_its_queues(sender: type[Category], *, category: Category, user: Any, **kwargs: Any) -> None:
    if kwargs.get("create_default_queues", True):
        create_default_queues(category=category, user=user)
