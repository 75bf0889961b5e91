"""The label export from the admin: a curator starts it, an RQ job writes the same records as the API with its
progress counted, the list shows how far it got, and only the requester downloads the file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client

from cases.models import Queue
from reviews import jobs, services
from reviews.models import LabelExport
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator(make_user: Any, settings: Any, tmp_path: Any) -> User:
    settings.HITL_EXPORT_DIR = str(tmp_path / "exports")
    category = make_category("job", auto_threshold=0.9, review_threshold=0.6)
    rev: User = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="job-quick"))
    for index in range(3):
        case = make_case(
            category, confidence=0.8, external_id=f"j-{index}", input={"text": f"mail me at a{index}@x.io"}
        )
        services.decide(case=case, user=rev, action="approve")
    user: User = make_user("curator", roles=["Data Curator"], is_staff=True)
    return user


def test_a_curator_exports_from_the_admin_and_downloads_the_file(curator: User, api: Any) -> None:
    client = Client()
    client.force_login(curator)
    started = client.post("/admin/reviews/labelexport/add/", {"format": "jsonl", "category": ""})
    assert started.status_code == 302, started.content
    item = LabelExport.objects.get()
    assert (item.status, item.requested_by, item.params) == ("queued", curator, {"format": "jsonl"})
    waiting = client.get("/admin/reviews/labelexport/")
    assert b'http-equiv="refresh"' in waiting.content  # the list follows the job by itself

    summary = jobs.export_labels(item.pk)
    assert summary == {"export": item.pk, "status": "done", "written": 3}
    assert jobs.export_labels(item.pk)["written"] == 3  # a second run writes nothing twice

    listing = client.get("/admin/reviews/labelexport/")
    assert b"3 of 3" in listing.content and b"Download" in listing.content
    assert b'http-equiv="refresh"' not in listing.content
    download = client.get(f"/admin/reviews/labelexport/{item.pk}/download/")
    assert download.status_code == 200
    records = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    through_api = b"".join(api(curator).get("/api/v1/labels/").streaming_content).decode().splitlines()
    assert records == [json.loads(line) for line in through_api]
    assert records[0]["input"] == {"text": "mail me at [email]"}


def test_a_bad_filter_is_refused_before_any_job(curator: User) -> None:
    client = Client()
    client.force_login(curator)
    response = client.post("/admin/reviews/labelexport/add/", {"format": "xml"})
    assert response.status_code == 200 and "format" in response.context["adminform"].form.errors
    assert not LabelExport.objects.exists()


def test_nobody_else_downloads_someone_elses_export(curator: User, make_user: Any) -> None:
    item = services.request_export(user=curator, params={"format": "csv"})
    jobs.export_labels(item.pk)
    other: User = make_user("other-curator", roles=["Data Curator"], is_staff=True)
    client = Client()
    client.force_login(other)
    assert client.get(f"/admin/reviews/labelexport/{item.pk}/download/").status_code == 404
    reviewer = User.objects.get(username="rev")
    with pytest.raises(PermissionDenied):
        services.request_export(user=reviewer, params={"format": "csv"})
