"""The metrics layer's answer to a new category: its default alert rules (editable in the admin)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from governance.models import Category
from governance.signals import category_created
from metrics.services.alerts import create_default_rules


@receiver(category_created, sender=Category, dispatch_uid="metrics.default_alert_rules")
def give_new_category_its_alert_rules(sender: type[Category], *, category: Category, **kwargs: Any) -> None:
    create_default_rules(category)
