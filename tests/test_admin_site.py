"""The project's admin site: a subclass of Django's, made the default, that adds the reviewer's workplace.

What the workplace pages do is tested in test_admin_review.py; here, that the site is what `admin.site` means, that
its own methods (not replaced ones) add the workplace's URLs and the "My queues" entry, and where that entry goes.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from cases.models import Queue
from hitl_project.admin_site import HitlAdminSite
from tests.factories import grant_queue, login, make_category

pytestmark = pytest.mark.django_db

WORK_URL = "/admin/reviews/work/"


def apps_by_label(response: Any) -> dict[str, Any]:
    return {app["app_label"]: app for app in response.context["app_list"]}


def test_the_default_admin_site_is_the_project_site_with_its_own_methods() -> None:
    assert isinstance(admin.site, HitlAdminSite)
    # Bound methods of the class, not functions stored on the instance at import time.
    for name in ("get_urls", "get_app_list"):
        method = getattr(admin.site, name)
        assert isinstance(method, MethodType)
        assert method.__func__ is getattr(HitlAdminSite, name)


def test_every_admin_page_carries_the_site_header_and_title(superuser: User) -> None:
    response = login(superuser).get("/admin/")

    assert (response.context["site_header"], response.context["site_title"]) == ("HITL Desk", "HITL Desk")
    assert response.context["title"] == "Review, policy and audit"


def test_the_workplace_urls_are_named_in_the_admin_namespace_ahead_of_the_catch_all() -> None:
    assert reverse("admin:reviews_work") == WORK_URL
    assert reverse("admin:reviews_work_queue", args=["q"]) == "/admin/reviews/work/queue/q/"
    assert reverse("admin:reviews_work_case", args=[7]) == "/admin/reviews/work/case/7/"
    # The reviews app index is still the site's own page.
    assert reverse("admin:app_list", args=["reviews"]) == "/admin/reviews/"


def test_the_workplace_is_for_signed_in_staff_only(make_user: Any) -> None:
    assert Client().get(WORK_URL).status_code == 302
    assert login(make_user("outsider")).get(WORK_URL).status_code == 302


def test_my_queues_comes_first_in_reviews_on_the_index_and_the_app_page(make_user: Any) -> None:
    make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(reviewer, Queue.objects.get(slug="cat-quick"))
    client = login(reviewer)

    for url in ("/admin/", "/admin/reviews/"):
        first = apps_by_label(client.get(url))["reviews"]["models"][0]
        assert (first["name"], first["admin_url"]) == ("My queues", WORK_URL)


def test_a_queue_granted_on_the_object_alone_brings_reviews_to_the_index(make_user: Any) -> None:
    make_category("cat")
    worker = make_user("obj", is_staff=True)
    grant_queue(worker, Queue.objects.get(slug="cat-audit"))

    reviews = apps_by_label(login(worker).get("/admin/"))["reviews"]

    assert [model["name"] for model in reviews["models"]] == ["My queues"]
    assert reviews["app_url"] == WORK_URL


def test_the_app_list_of_another_app_has_no_my_queues(make_user: Any) -> None:
    make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(reviewer, Queue.objects.get(slug="cat-quick"))

    response = login(reviewer).get("/admin/cases/")

    assert response.status_code == 200
    names = [model["name"] for app in response.context["app_list"] for model in app["models"]]
    assert "My queues" not in names
