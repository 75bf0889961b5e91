"""Visibility is written once per model (`visible_to(user)` on its queryset) and applied once per viewset and per
admin, by their shared bases, before any lookup: no view or admin narrows by hand."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, User
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from cases.api.urls import router as cases_router
from governance.admin_mixins import VisibleToAdminMixin
from governance.api.plumbing import VisibleToUserMixin
from governance.api.urls import router as governance_router
from governance.models import Incident, Notification, Policy
from governance.services.incidents import open_incident
from metrics.models import Alert, AlertRule
from reviews.api.urls import router as reviews_router
from tests.factories import make_category

OUR_APPS = {"governance", "cases", "reviews", "metrics"}
# The one admin whose rows belong to a person rather than a category: everyone sees their own notifications.
PERSONAL_ADMINS = {Notification}


def _viewsets() -> list[type[Any]]:
    return [
        viewset for router in (governance_router, cases_router, reviews_router) for _, viewset, _ in router.registry
    ]


@pytest.mark.parametrize("viewset", _viewsets(), ids=lambda v: v.__name__)
def test_every_api_viewset_narrows_its_declared_queryset_through_the_shared_base(viewset: type[Any]) -> None:
    assert issubclass(viewset, VisibleToUserMixin)
    assert viewset.queryset is not None and hasattr(viewset.queryset, "visible_to")
    own = inspect.getsource(viewset)
    assert "visible_to(" not in own  # the base applies it; a viewset never narrows by hand


def _our_admins() -> list[tuple[type[Any], admin.ModelAdmin[Any]]]:
    return [
        (model, model_admin) for model, model_admin in admin.site._registry.items() if model._meta.app_label in OUR_APPS
    ]


@pytest.mark.parametrize("model_admin", [a for m, a in _our_admins() if m not in PERSONAL_ADMINS], ids=str)
def test_every_admin_of_our_models_draws_the_boundary_through_the_models_visible_to(
    model_admin: admin.ModelAdmin[Any],
) -> None:
    assert isinstance(model_admin, VisibleToAdminMixin)
    assert hasattr(model_admin.model._default_manager.none(), "visible_to")
    assert "category__in=Category.objects.visible_to" not in inspect.getsource(type(model_admin))


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Policy, Incident, AlertRule, Alert], ids=lambda m: m.__name__)
def test_rows_of_a_category_are_visible_exactly_with_their_category(model: type[Any], make_user: Any) -> None:
    mine, theirs = make_category("mine"), make_category("theirs")
    for category in (mine, theirs):  # a policy, an incident, alert rules and an alert in each
        incident = open_incident(category=category, title="Drift", user=None)
        rule = AlertRule.objects.get(category=category, kind="override_rate")
        Alert.objects.create(
            rule=rule, category=category, fired_at=incident.opened_at, value=1, threshold=0.3, incident=incident
        )
    viewer: User = make_user("viewer")
    assign_perm("governance.view_category", viewer, mine)
    viewer = User.objects.get(pk=viewer.pk)
    superuser = User.objects.create_superuser("root")

    assert {row.category_id for row in model.objects.visible_to(viewer)} == {mine.pk}
    assert {row.category_id for row in model.objects.visible_to(superuser)} == {mine.pk, theirs.pk}
    assert not model.objects.visible_to(AnonymousUser()).exists()


@pytest.mark.django_db
def test_a_category_outside_the_grants_is_a_404_on_every_category_endpoint(make_user: Any) -> None:
    make_category("hidden")
    outsider: User = make_user("outsider")
    client = APIClient()
    client.force_authenticate(outsider)
    for path in ("/api/v1/categories/hidden/", "/api/v1/categories/hidden/policy/"):
        assert client.get(path).status_code == 404, path
