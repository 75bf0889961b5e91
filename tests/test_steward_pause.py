"""Model stewards pause and resume the categories granted to them (DESIGN.md, roles), in the admin and the API;
anyone else without `governance.change_category` is refused and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from governance.models import Category
from tests.factories import make_category

pytestmark = pytest.mark.django_db


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def category() -> Category:
    return make_category("stw")


def test_a_steward_pauses_and_resumes_over_the_api(category: Category, make_user: Any, api: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"])
    client = api(steward)
    assert client.post("/api/v1/categories/stw/pause/", {"reason": "override spike"}, format="json").status_code == 200
    category.refresh_from_db()
    assert category.paused and category.paused_by == steward and category.paused_reason == "override spike"
    assert client.post("/api/v1/categories/stw/resume/", {"reason": "fixed"}, format="json").status_code == 200
    assert not Category.objects.get(pk=category.pk).paused


def test_a_reviewer_may_not_pause(category: Category, make_user: Any, api: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"])
    assign_perm("governance.view_category", reviewer, category)
    response = api(reviewer).post("/api/v1/categories/stw/pause/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert "Model Steward" in response.json()["detail"]
    assert not Category.objects.get(pk=category.pk).paused


def test_a_steward_granted_one_category_pauses_only_that_one(category: Category, make_user: Any, api: Any) -> None:
    other = make_category("oth")
    steward = make_user("narrow-steward", is_staff=True)
    steward.user_permissions.add(Permission.objects.get(codename="change_modelversion"))
    assign_perm("governance.view_category", steward, category)
    client = api(steward)
    assert client.post("/api/v1/categories/stw/pause/", {"reason": "x"}, format="json").status_code == 200
    # The other category is not theirs to see: unknown, and untouched.
    assert client.post("/api/v1/categories/oth/pause/", {"reason": "x"}, format="json").status_code == 404
    assert Category.objects.get(pk=category.pk).paused and not Category.objects.get(pk=other.pk).paused
    admin = login(steward)
    url = reverse("admin:governance_category_pause", args=[other.pk])
    assert admin.post(url, {"post": "yes", "reason": "x"}).status_code in (403, 404)
    assert not Category.objects.get(pk=other.pk).paused


def test_a_steward_resumes_from_the_category_page_in_the_admin(category: Category, make_user: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"], is_staff=True)
    admin = login(steward)
    page = admin.get(reverse("admin:governance_category_change", args=[category.pk])).content.decode()
    assert reverse("admin:governance_category_pause", args=[category.pk]) in page
    pause = reverse("admin:governance_category_pause", args=[category.pk])
    assert admin.post(pause, {"post": "yes", "reason": "incident 7"}).status_code == 302
    assert Category.objects.get(pk=category.pk).paused
    resume = reverse("admin:governance_category_resume", args=[category.pk])
    assert admin.post(resume, {"post": "yes", "reason": "remediated"}).status_code == 302
    category.refresh_from_db()
    assert not category.paused and category.resumed_at is not None


def test_a_paused_category_reads_as_a_warning_in_the_list(category: Category, make_user: Any) -> None:
    steward = make_user("steward", roles=["Model Steward"], is_staff=True)
    admin = login(steward)
    listing = reverse("admin:governance_category_changelist")
    assert "icon-alert.svg" not in admin.get(listing).content.decode()
    admin.post(reverse("admin:governance_category_pause", args=[category.pk]), {"post": "yes", "reason": "spike"})
    page = admin.get(listing).content.decode()
    assert 'alt="Warning"> <strong title="spike">paused</strong>' in page
    assert "icon-yes.svg" not in page  # no green tick says "paused"
