"""Migrations do the same thing forever: they freeze the values they need instead of importing live code."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_categories_older_than_alert_rules_get_the_defaults_as_they_were_then() -> None:
    old_apps = migrate([("metrics", "0001_alerts")])
    try:
        old_apps.get_model("governance", "Category").objects.create(slug="old", name="Old")
        new_apps = migrate([("metrics", "0002_default_alert_rules")])
        rules = new_apps.get_model("metrics", "AlertRule").objects.filter(category__slug="old")
        created = sorted(rules.values_list("kind", "threshold", "window_hours", "min_count", "action"))
    finally:
        # Leave the schema at the latest migration for the tests after this one.
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    # The defaults the migration was written with, whatever the live ones (metrics' DEFAULT_RULES) are today.
    assert created == [
        ("confidence_drift", 0.20, 24, 100, "notify"),
        ("escalation_spike", 0.20, 1, 20, "notify"),
        ("override_rate", 0.30, 24, 20, "notify"),
        ("resolution_time", 2.0, 24, 20, "notify"),
        ("rubber_stamping", 0.98, 24, 50, "notify"),
    ]
