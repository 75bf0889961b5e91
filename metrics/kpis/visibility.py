"""Whose reviewer figures a user sees (DESIGN.md, KPIs): everyone's for superusers, data curators and whoever may
change the category; their own row for anyone else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.models import Category
from governance.permissions import DATA_CURATOR, can_change_category

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def sees_every_reviewer(user: User | AnonymousUser, category: Category) -> bool:
    """Superusers, data curators and whoever may change the category see every person's figures (DESIGN.md, KPIs)."""
    return bool(
        user.is_authenticated
        and (user.is_superuser or can_change_category(user, category) or user.groups.filter(name=DATA_CURATOR).exists())
    )


def reviewers_visible_to(rows: list[dict[str, Any]], user: User | AnonymousUser, category: Category) -> list[Any]:
    """Every person's row for those who see every reviewer; one's own row for anyone else (DESIGN.md, KPIs)."""
    if not user.is_authenticated:
        return []
    if sees_every_reviewer(user, category):
        return rows
    return [row for row in rows if row["username"] == user.get_username()]
