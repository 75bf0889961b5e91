"""Data curators certify and revoke reviewers in the admin, with a reason kept in the history; nobody else opens
the labels or the certifications there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from cases.models import Queue
from reviews import services
from reviews.models import Label, ReviewerCertification
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user: Any) -> tuple[User, User]:
    category = make_category("cert", auto_threshold=0.9, review_threshold=0.6)
    reviewer: User = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(reviewer, Queue.objects.get(slug="cert-quick"))
    services.decide(case=make_case(category, confidence=0.8), user=reviewer, action="approve")
    curator: User = make_user("curator", roles=["Data Curator"], is_staff=True)
    return reviewer, curator


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_curator_certifies_with_a_reason_and_sees_the_evidence(people: tuple[User, User]) -> None:
    reviewer, curator = people
    client = client_for(curator)
    category = Label.objects.get().category
    missing = client.post(
        "/admin/reviews/reviewercertification/add/", {"reviewer": reviewer.pk, "category": category.pk}
    )
    assert missing.status_code == 200 and "reason" in missing.context["adminform"].form.errors
    added = client.post(
        "/admin/reviews/reviewercertification/add/",
        {"reviewer": reviewer.pk, "category": category.pk, "reason": "Scored 96 % on the calibration set"},
    )
    assert added.status_code == 302, added.content
    certification = ReviewerCertification.objects.get()
    assert certification.active and services.is_certified(reviewer, category)
    record = certification.history.get()
    assert (record.history_user, record.history_change_reason) == (
        curator,
        "Certified: Scored 96 % on the calibration set",
    )
    listing = client.get("/admin/reviews/reviewercertification/")
    assert listing.status_code == 200
    assert b"100%" in listing.content  # the one label they made was an approve


def test_a_curator_revokes_with_a_reason(people: tuple[User, User]) -> None:
    reviewer, curator = people
    category = Label.objects.get().category
    certification = services.certify(curator=curator, reviewer=reviewer, category=category, reason="ok")
    client = client_for(curator)
    url = "/admin/reviews/reviewercertification/"
    chosen = {"action": "revoke_selected", admin.helpers.ACTION_CHECKBOX_NAME: [certification.pk]}
    asks = client.post(url, chosen)
    assert asks.status_code == 200 and b"reason" in asks.content
    done = client.post(url, {**chosen, "post": "yes", "reason": "Missed the October refresher"})
    assert done.status_code == 302
    certification.refresh_from_db()
    assert not certification.active and certification.revoked_at is not None
    assert not services.is_certified(reviewer, category)


def test_nobody_but_curators_opens_labels_or_certifications(people: tuple[User, User]) -> None:
    reviewer, _ = people
    client = client_for(reviewer)
    for url in ("/admin/reviews/label/", "/admin/reviews/reviewercertification/"):
        assert client.get(url).status_code == 403, url
    assert b"/admin/reviews/label/" not in client.get("/admin/").content
    assert client_for(people[1]).get("/admin/reviews/label/").status_code == 200


def test_the_reviewer_is_chosen_from_the_people_who_decide(people: tuple[User, User], make_user: Any) -> None:
    reviewer, curator = people
    make_user("manager", roles=["Escalation Manager"], is_staff=True)
    make_user("owner", roles=["Product Owner"], is_staff=True)
    make_user("gone", roles=["Reviewer"], is_active=False)
    form = client_for(curator).get("/admin/reviews/reviewercertification/add/").context["adminform"].form
    choices = [label for value, label in form.fields["reviewer"].choices if value]
    assert choices == ["manager", "rev"]  # not the curator, the product owner, nor someone who left
