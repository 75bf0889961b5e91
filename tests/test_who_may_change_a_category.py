"""Who may change a category is one rule (governance.permissions.can_change_category): the category admin,
the webhook admin, the category API and the alert-rule admin all give the same answer for the same grants."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, Group, User
from django.http import HttpRequest
from django.test import RequestFactory
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from governance.admin.categories import CategoryAdmin
from governance.admin.webhooks import WebhookEndpointAdmin
from governance.models import Category, WebhookEndpoint
from governance.permissions import can_change_category, changeable_category_ids
from governance.webhooks import create_endpoint
from metrics.admin import AlertRuleAdmin
from metrics.models import AlertRule
from tests.factories import make_category

pytestmark = pytest.mark.django_db

CHANGE = "governance.change_category"


def grant(user: User, how: str, category: Category, other: Category) -> None:
    if how == "global grant":
        assign_perm(CHANGE, user)
    elif how == "grant on this category":
        assign_perm(CHANGE, user, category)
    elif how == "grant on another category":
        assign_perm(CHANGE, user, other)


def staff_user(how: str, category: Category, other: Category) -> User:
    """A staff user who sees the category (a view grant on it) and holds `change_category` as `how` says.

    Seeing it is the same for everyone, so the only difference between them is the rule under test (and the API
    answers 403, not 404). A fresh object: grants are cached on the user object once read.
    """
    user = User.objects.create_user(f"user-{how.replace(' ', '-')}", is_staff=True)
    assign_perm("governance.view_category", user, category)
    grant(user, how, category, other)
    return User.objects.get(pk=user.pk)


def request_of(user: User) -> HttpRequest:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def endpoint_of(category: Category) -> WebhookEndpoint:
    return create_endpoint(category=category, url="https://hooks.example.com/h", events=["case.routed"], user=None)


def category_admin_allows(user: User, category: Category) -> bool:
    return CategoryAdmin(Category, admin.site).has_change_permission(request_of(user), category)


def webhook_admin_allows(user: User, category: Category) -> bool:
    endpoint = endpoint_of(category)
    return WebhookEndpointAdmin(WebhookEndpoint, admin.site).has_change_permission(request_of(user), endpoint)


def category_api_allows(user: User, category: Category) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = client.post(f"/api/v1/categories/{category.slug}/pause/", {"reason": "checking"}, format="json")
    assert response.status_code in (200, 403), response.content
    return response.status_code == 200


def alert_rule_admin_allows(user: User, category: Category) -> bool:
    rule = AlertRule.objects.filter(category=category).first()
    assert rule is not None
    return AlertRuleAdmin(AlertRule, admin.site).has_change_permission(request_of(user), rule)


SURFACES: dict[str, Callable[[User, Category], bool]] = {
    "category admin": category_admin_allows,
    "webhook admin": webhook_admin_allows,
    "category API": category_api_allows,
    "alert-rule admin": alert_rule_admin_allows,
}
GRANTS = {
    "global grant": True,
    "grant on this category": True,
    "grant on another category": False,
    "no grant": False,
}


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("how", "allowed"), GRANTS.items())
def test_every_surface_lets_exactly_those_who_may_change_the_category_change_it(
    surface: str, how: str, allowed: bool
) -> None:
    category, other = make_category("refunds"), make_category("triage")
    user = staff_user(how, category, other)

    assert can_change_category(user, category) is allowed
    assert SURFACES[surface](user, category) is allowed


# With no category in hand the question is "on at least one": a grant on another category counts.
ON_AT_LEAST_ONE = {**GRANTS, "grant on another category": True}


@pytest.mark.parametrize(("how", "allowed"), ON_AT_LEAST_ONE.items())
def test_with_no_category_the_admins_ask_whether_the_user_may_change_at_least_one(how: str, allowed: bool) -> None:
    category, other = make_category("refunds"), make_category("triage")
    user = staff_user(how, category, other)

    assert can_change_category(user) is allowed
    assert CategoryAdmin(Category, admin.site).has_change_permission(request_of(user)) is allowed
    assert WebhookEndpointAdmin(WebhookEndpoint, admin.site).has_add_permission(request_of(user)) is allowed


def test_the_ids_say_every_category_for_a_global_grant_and_a_superuser_and_the_granted_ones_otherwise(
    superuser: User,
) -> None:
    category, other = make_category("refunds"), make_category("triage")
    owner = staff_user("grant on this category", category, other)
    steward = staff_user("global grant", category, other)

    assert changeable_category_ids(superuser) is None
    assert changeable_category_ids(steward) is None
    assert changeable_category_ids(owner) == {category.pk}
    assert changeable_category_ids(AnonymousUser()) == set()


def test_a_grant_to_a_group_counts_like_a_grant_to_the_user() -> None:
    category, other = make_category("refunds"), make_category("triage")
    owners = Group.objects.create(name="refund owners")
    assign_perm(CHANGE, owners, category)
    user = User.objects.create_user("member")
    user.groups.add(owners)
    user = User.objects.get(pk=user.pk)

    assert can_change_category(user, category)
    assert not can_change_category(user, other)


def test_an_anonymous_user_may_change_nothing() -> None:
    category = make_category("refunds")

    assert not can_change_category(AnonymousUser(), category)
    assert not can_change_category(AnonymousUser())
