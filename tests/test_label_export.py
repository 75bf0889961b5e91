"""GET /api/v1/labels/: one record per label, DESIGN.md's fields in DESIGN.md's order, the input redacted,
streamed as JSON lines or CSV, for data curators and superusers only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from cases.models import Queue
from governance.models import Category
from reviews import services
from reviews.export import FIELDS
from reviews.models import Label
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db

URL = "/api/v1/labels/"


@pytest.fixture
def category(make_user: Any) -> Category:
    category = make_category("exp", auto_threshold=0.9, review_threshold=0.6, audit_rate=0.0)
    Category.objects.filter(pk=category.pk).update(pii_fields=["customer"])
    category.refresh_from_db()
    rev: User = make_user("rev", roles=["Reviewer"])
    grant_queue(rev, Queue.objects.get(slug="exp-quick"))
    curator: User = make_user("boss-curator", roles=["Data Curator"])
    first = make_case(
        category,
        confidence=0.8,
        external_id="t-1",
        input={"text": "Write to ann@example.com", "customer": "Ann Smith"},
        output={"label": "shipping"},
    )
    services.decide(case=first, user=rev, action="approve")
    services.certify(curator=curator, reviewer=rev, category=category, reason="calibrated")
    second = make_case(category, confidence=0.8, external_id="t-2", output={"label": "shipping"})
    services.decide(case=second, user=rev, action="correct", output={"label": "billing"}, reason_code="wrong_label")
    return category


@pytest.fixture
def curator() -> User:
    return User.objects.get(username="boss-curator")


def jsonl(response: Any) -> list[dict[str, Any]]:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def test_jsonl_has_designs_fields_in_order_and_the_input_redacted(category: Category, curator: User, api: Any) -> None:
    response = api(curator).get(f"{URL}?category=exp&format=jsonl")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    records = jsonl(response)
    assert [list(record) for record in records] == [list(FIELDS)] * 2
    assert list(FIELDS) == [
        "id", "case", "external_id", "category", "label", "model_label", "output", "input", "source", "reviewer",
        "certified", "passed_gate", "reason_code", "model_version", "policy_version", "created_at",
    ]  # fmt: skip
    first, second = records
    assert first["input"] == {"text": "Write to [email]", "customer": "[redacted]"}
    assert (first["external_id"], first["label"], first["source"], first["passed_gate"]) == (
        "t-1",
        "shipping",
        "approve",
        False,
    )
    assert (second["label"], second["model_label"], second["source"], second["reason_code"]) == (
        "billing",
        "shipping",
        "correct",
        "wrong_label",
    )
    assert (second["certified"], second["passed_gate"], second["reviewer"]) == (True, True, "rev")
    assert second["output"] == {"label": "billing"}
    assert (second["category"], second["model_version"], second["policy_version"]) == ("exp", "model@1", 1)


def test_csv_parses_back_with_the_same_fields(category: Category, curator: User, api: Any) -> None:
    # CSV writes the output as the JSON text the database holds: non-ASCII text and nested values parse back alike.
    third = make_case(category, confidence=0.8, external_id="t-3", output={"label": "shipping"})
    corrected = {"label": "réclamation", "text": 'Grüße, "quoted"\nnext line', "reasoning": {"cues": [1, 2.5, None]}}
    services.decide(
        case=third, user=User.objects.get(username="rev"), action="correct", output=corrected, reason_code="wrong_label"
    )
    response = api(curator).get(f"{URL}?category=exp&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(FIELDS)
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["label"] for r in records] == ["shipping", "billing", "réclamation"]
    assert json.loads(records[0]["input"]) == {"text": "Write to [email]", "customer": "[redacted]"}
    assert json.loads(records[2]["output"]) == corrected
    assert [r["passed_gate"] for r in records] == ["false", "true", "true"]
    # Every cell is its JSON line's value spelt out: None empty, flags in lower case, JSON values as JSON text.
    lines = jsonl(api(curator).get(f"{URL}?category=exp&format=jsonl"))
    for record, line in zip(records, lines, strict=True):
        for field, value in line.items():
            if isinstance(value, dict | list):
                assert json.loads(record[field]) == value, field
            else:
                spelt = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
                assert record[field] == spelt, field


def test_filters_narrow_the_export(category: Category, curator: User, api: Any) -> None:
    gated = jsonl(api(curator).get(f"{URL}?category=exp&passed_gate=true"))
    assert [r["external_id"] for r in gated] == ["t-2"]
    cut = Label.objects.get(case__external_id="t-2").created_at.isoformat().replace("+00:00", "Z")
    assert [r["external_id"] for r in jsonl(api(curator).get(f"{URL}?since={cut}"))] == ["t-2"]
    assert [r["external_id"] for r in jsonl(api(curator).get(f"{URL}?until={cut}"))] == ["t-1"]


def test_only_data_curators_and_superusers_export(category: Category, api: Any, make_user: Any) -> None:
    reviewer = User.objects.get(username="rev")
    assert api(reviewer).get(URL).status_code == 403
    assert api(None).get(URL).status_code == 401
    superuser = User.objects.create_superuser("root", "r@example.com", "pass-word-123")
    assert len(jsonl(api(superuser).get(URL))) == 2


def test_a_category_one_may_not_see_is_a_404(category: Category, curator: User, api: Any) -> None:
    # The Data Curator role sees every category (its global view_category); a name it cannot see is unknown.
    assert api(curator).get(f"{URL}?category=nowhere").status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [("format=xml", "format"), ("passed_gate=maybe", "passed_gate"), ("since=yesterday", "since")],
)
def test_a_bad_parameter_is_a_400_naming_it(
    category: Category, curator: User, api: Any, query: str, field: str
) -> None:
    response = api(curator).get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize("microsecond", [0, 100_000, 7])
def test_created_at_reads_as_isoformat_in_utc(category: Category, curator: User, api: Any, microsecond: int) -> None:
    """The database writes the timestamp's text (reviews.export.IsoInstant): it must be what isoformat gives,
    with or without microseconds, on PostgreSQL and SQLite alike."""
    label = Label.objects.get(case__external_id="t-1")
    # An instant given in another offset: the export states it in UTC.
    moment = dt.datetime(2026, 11, 30, 23, 5, 9, microsecond, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    Label.objects.filter(pk=label.pk).update(created_at=moment)
    records = {r["external_id"]: r for r in jsonl(api(curator).get(f"{URL}?category=exp&format=jsonl"))}
    assert records["t-1"]["created_at"] == moment.astimezone(dt.UTC).isoformat()
    assert records["t-1"]["created_at"].startswith("2026-11-30T21:05:09")
