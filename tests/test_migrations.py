"""Migrations do the same thing forever: they freeze the values they need instead of importing live code.

The only imports of our own packages a migration may hold are the ones Django writes itself (a model field's
default callable, `governance.models.generate_webhook_secret`) and, until that is decided, the trigger DDL of
`governance.append_only`. Anything else (a constant of live code such as the alert rules' DEFAULT_RULES) would
change what an old migration does when the live value changes.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = {"governance", "cases", "reviews", "metrics", "hitl_project"}
# `import governance.models` is how makemigrations writes a field's default callable (a `from governance.models
# import X` is not); the trigger DDL stays shared until that is decided.
ALLOWED = {"governance.models", "governance.append_only"}


def imported_modules(tree: ast.Module) -> set[str]:
    """Every name a migration imports, anywhere in the file, dotted in full (`from x import y` is x.y)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_migrations_import_no_live_code_of_ours_beyond_model_defaults_and_trigger_ddl() -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in ROOT.glob("*/migrations/[0-9]*.py")
        for module in imported_modules(ast.parse(path.read_text()))
        if module.split(".")[0] in OUR_PACKAGES and module not in ALLOWED
    }

    assert not offending


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
