"""The ground layer names nothing above it, not even by name (DESIGN.md, Layers).

import-linter (`make lint`) catches imports; these catch what it cannot see: a model fetched by its app label, a
permission or content type of a higher app, a higher app's admin URL, a reverse relation from a higher app's model.
What governance needs from above is registered from above, and the tests at the end check that it is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm

from cases.models import Queue
from governance import permissions
from governance.admin import incidents
from governance.api import serializers
from governance.models import AuditEvent, Category
from tests.factories import grant_queue, make_case, make_category

LAYERS = ("governance", "cases", "reviews", "metrics", "hitl_project")  # DESIGN.md, Layers: lowest first
ROOT = Path(__file__).resolve().parent.parent
GROUND = LAYERS[0]
ABOVE = LAYERS[1:]
GOVERNANCE_DIR = ROOT / GROUND


def named_above(layer: str) -> re.Pattern[str]:
    """ "cases.view_pii", "admin:metrics_alert_change", "metrics/alert/...": a higher app by its label."""
    above = LAYERS[LAYERS.index(layer) + 1 :]
    return re.compile(rf"^(?:admin:)?(?:{'|'.join(above)})[._/]")


NAMED_ABOVE = named_above(GROUND)
JOB_PATH = re.compile(r"^[a-z_]+\.jobs\.[a-z_]+$")


def sources(layer: str) -> list[Path]:
    return sorted(path for path in (ROOT / layer).rglob("*.py") if "migrations" not in path.parts)


def governance_sources() -> list[Path]:
    return sources(GROUND)


def reverse_accessors_from_above(layer: str = GROUND) -> set[str]:
    """The names by which a model of `layer` reaches the models of higher apps that point at it."""
    names = set()
    for label in LAYERS[LAYERS.index(layer) + 1 :]:
        if label == "hitl_project":
            continue  # the wiring has no models
        for model in apps.get_app_config(label).get_models():
            for field in model._meta.get_fields():
                points_down = field.is_relation and field.related_model is not None and not field.auto_created
                if not points_down or field.related_model._meta.app_label != layer:
                    continue
                if field.model._meta.app_label != label or field.remote_field.hidden:
                    continue  # a proxy's inherited field, or a relation with no way back ("+")
                names |= {field.remote_field.get_accessor_name(), field.related_query_name()}
    return names


def upward_names(path: Path, accessors: set[str], layer: str = GROUND) -> list[str]:
    found = []
    pattern = named_above(layer)
    above = LAYERS[LAYERS.index(layer) + 1 :]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if JOB_PATH.match(text):
                continue  # DESIGN.md: a lower layer starts work above it by enqueueing the job by its dotted name
            if pattern.match(text) or text.split("__")[0] in accessors:
                found.append(f"{where} names {text!r}")
        elif isinstance(node, ast.Call):
            # get_model("cases", "Queue"), get_by_natural_key("cases", "queue"): a label, then one of its models.
            texts = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
            for label, model in zip(texts, texts[1:], strict=False):
                if label in above and isinstance(model, str):
                    found.append(f"{where} names {label!r}, {model!r}")
        elif isinstance(node, ast.Attribute) and node.attr in accessors:
            found.append(f"{where} reads .{node.attr}")
    return found


def test_governance_names_no_app_model_permission_url_or_relation_from_above() -> None:
    accessors = reverse_accessors_from_above()
    assert {"queues", "cases", "alerts", "alert_rules"} <= accessors  # the check looks for the real names

    found = [name for path in governance_sources() for name in upward_names(path, accessors)]

    assert found == []


@pytest.mark.parametrize("layer", ["cases", "reviews"])
def test_no_layer_names_an_app_model_permission_url_or_relation_from_above(layer: str) -> None:
    accessors = reverse_accessors_from_above(layer)
    found = [name for path in sources(layer) for name in upward_names(path, accessors, layer)]

    assert found == []


@pytest.mark.django_db
def test_what_governance_needs_from_cases_is_registered_from_cases() -> None:
    """Whoever works a queue sees its category and its cases' audit events: known to governance only through the
    providers cases registered in its ready()."""
    assert "worked queues" in permissions._VISIBLE_CATEGORY_IDS
    assert "cases" in permissions._VISIBLE_CASE_IDS
    assert "queues" in serializers.CATEGORY_FIELDS
    assert list(incidents._INCIDENT_PANELS) == ["affected_cases", "alerts_fired"]  # in layer order

    category, other = make_category("refunds"), make_category("triage")
    case, elsewhere = make_case(category), make_case(other)
    user = User.objects.create_user("reviewer")
    grant_queue(user, Queue.objects.get(category=category, kind="full"))
    user = User.objects.get(pk=user.pk)

    assert list(Category.objects.visible_to(user)) == [category]
    seen = set(AuditEvent.objects.visible_to(user).values_list("case_id", flat=True))
    assert case.pk in seen and elsewhere.pk not in seen


@pytest.mark.django_db
def test_a_full_access_grant_still_opens_a_category_without_any_queue() -> None:
    category = make_category("refunds")
    make_category("triage")
    user = User.objects.create_user("owner")
    assign_perm("governance.view_category", user, category)
    user = User.objects.get(pk=user.pk)

    assert list(Category.objects.visible_to(user)) == [category]
