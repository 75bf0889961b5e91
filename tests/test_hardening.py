"""Regression tests for the hardening issue: each reproducer of an attacker or a careless client, with the status,
the message, and that nothing was written."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from cases.models import Case
from governance.models import AuditEvent, Category
from reviews import services as review_services
from reviews.models import Decision
from tests.factories import UserFactory, grant_queue, grant_submit, make_case, make_category

pytestmark = pytest.mark.django_db

URL = "/api/v1/cases/"


def body(category: str = "cat", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": category,
        "external_id": "ticket-1",
        "input": {"text": "My parcel never arrived"},
        "output": {"label": "shipping", "text": "Sorry!"},
        "confidence": 0.99,
        "model_version": "model@1",
    }
    data.update(overrides)
    return data


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def integration(api: Any) -> APIClient:
    user = UserFactory(username="integration")
    grant_submit(user, make_category("cat"))
    client: APIClient = api(user)
    return client


def post_raw(client: APIClient, url: str, text: str) -> Any:
    return client.generic("POST", url, text, content_type="application/json")


def nothing_written() -> bool:
    return not Case.objects.exists() and not AuditEvent.objects.filter(kind="case.routed").exists()


# --- 1. the RQ dashboard ---


@pytest.mark.parametrize("path", ["/django-rq/", "/django-rq/queues/0/", "/django-rq/queues/0/empty/"])
def test_the_rq_dashboard_is_for_superusers_only(path: str) -> None:
    reviewer = UserFactory(username="rev", roles=["Reviewer"], is_staff=True)
    client = Client()
    client.force_login(reviewer)
    response = client.get(path)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert client.post(path, {"post": "yes"}).status_code == 302


def test_superusers_pass_the_rq_dashboards_guard() -> None:
    from django.http import HttpResponse
    from django.test import RequestFactory

    from hitl_project.urls import superusers_only

    view = superusers_only(lambda request: HttpResponse("dashboard"))
    request = RequestFactory().get("/django-rq/")
    request.user = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    assert view(request).content == b"dashboard"
    request.user = UserFactory(username="staffer", is_staff=True)
    assert view(request).status_code == 302


def test_django_rq_has_no_pages_inside_the_admin_for_staff() -> None:
    client = Client()
    client.force_login(UserFactory(username="rev", roles=["Reviewer"], is_staff=True))
    assert client.get("/admin/django_rq/dashboard/").status_code == 404
    assert client.get("/admin/django_rq/dashboard/queues/0/").status_code == 404


# --- 2. blind review in the admin ---


def test_the_admin_case_page_hides_a_shadow_cases_output_until_a_person_decided() -> None:
    category = make_category("blind", stage="shadow")
    case = make_case(category, output={"label": "secret-label", "text": "secret draft", "reasoning": "secret why"})
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/admin/cases/case/{case.pk}/change/").content.decode()
    assert "blind review" in page
    for secret in ("secret-label", "secret draft", "secret why"):
        assert secret not in page


def test_an_escalated_shadow_case_keeps_the_model_output_hidden_in_decisions() -> None:
    category = make_category("blind", stage="shadow")
    case = make_case(category, output={"label": "secret-label"})
    reviewer = UserFactory(username="rev", roles=["Reviewer"], is_staff=True)
    grant_queue(reviewer, case.queue)
    review_services.decide(case=case, user=reviewer, action="escalate", reason_code="high_risk")
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    client = Client()
    client.force_login(superuser)
    decision = Decision.objects.get(case=case)
    assert "secret-label" not in client.get(f"/admin/reviews/decision/{decision.pk}/change/").content.decode()
    api = APIClient()
    api.force_authenticate(superuser)
    data = api.get(f"{URL}{case.pk}/").json()
    assert data["output"] is None
    assert "secret-label" not in json.dumps(data)


# --- 4. nesting ---


@pytest.mark.parametrize("depth", [500, 10_000])
def test_deeply_nested_json_is_refused_before_it_is_parsed(integration: APIClient, depth: int) -> None:
    text = json.dumps(body()).replace(
        '"input": {"text": "My parcel never arrived"}', '"input": ' + "[" * depth + "]" * depth
    )
    response = post_raw(integration, URL, text)
    assert response.status_code == 400
    assert f"deeper than {settings.HITL_MAX_JSON_DEPTH} levels" in response.json()["detail"]
    assert nothing_written()


def test_nesting_up_to_the_limit_is_stored_and_reads_back(integration: APIClient) -> None:
    # The body and `input` are two of the levels.
    value = nested(settings.HITL_MAX_JSON_DEPTH - 2)
    response = integration.post(URL, body(input={"deep": value}), format="json")
    assert response.status_code == 201, response.content
    assert integration.get(f"{URL}{response.json()['id']}/").json()["input"]["deep"] == value


def test_a_case_stored_deeper_than_the_limit_still_reads(integration: APIClient) -> None:
    """Stored by some other way (an old release, a script): every reader copes, the redaction hides the depths."""
    case = make_case(Category.objects.get(slug="cat"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_case SET input = %s WHERE id = %s", [json.dumps({"deep": nested(800)}), case.pk])
    response = integration.get(f"{URL}{case.pk}/")
    assert response.status_code == 200
    assert "[redacted]" in json.dumps(response.json()["input"])
    assert integration.get(URL, {"category": "cat"}).status_code == 200


# --- 5. other inputs that gave a 500 ---


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input", {"text": "nul \u0000 here"}),
        ("input", {"key\u0000": "x"}),
        ("output", {"label": "shipping", "text": "a\u0000b"}),
        ("segment", {"channel": "\u0000"}),
        ("input", {"text": "\ud800"}),
    ],
    ids=["nul-in-input", "nul-in-key", "nul-in-output", "nul-in-segment", "lone-surrogate"],
)
def test_text_the_database_cannot_store_is_a_400_naming_the_field(
    integration: APIClient, field: str, value: Any
) -> None:
    response = post_raw(integration, URL, json.dumps(body(**{field: value})))
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert "Cannot be stored" in response.json()[field][0]
    assert nothing_written()


def test_in_bulk_only_the_unstorable_item_is_invalid(integration: APIClient) -> None:
    items = [
        body(external_id="good-1"),
        body(external_id="bad", input={"text": "\u0000"}),
        body(external_id="good-2"),
        body(external_id="odd-category", category=["a", "list"]),
        body(external_id="odd-category-2", category={"an": "object"}),
    ]
    response = post_raw(integration, f"{URL}bulk/", json.dumps({"cases": items}))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["created", "invalid", "created", "invalid", "invalid"]
    assert "input" in results[1]["errors"]
    assert "category" in results[3]["errors"] and "category" in results[4]["errors"]
    assert set(Case.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}


def test_a_nul_in_decide_output_is_a_400_and_changes_nothing(api: Any) -> None:
    category = make_category("cat")
    case = make_case(category, confidence=0.8)
    reviewer = UserFactory(username="rev", roles=["Reviewer"])
    grant_queue(reviewer, case.queue)
    response = post_raw(
        api(reviewer), f"{URL}{case.pk}/decide/", json.dumps({"action": "correct", "output": {"label": "a\u0000"}})
    )
    assert response.status_code == 400
    assert "output" in response.json()
    assert not Decision.objects.exists()
    case.refresh_from_db()
    assert case.status == "queued"


@pytest.mark.parametrize("slug", ["a\u0000b", "a\ud800b"])
def test_a_category_named_with_a_nul_or_a_lone_surrogate_is_a_400_naming_it(api: Any, slug: str) -> None:
    """A slug looked up in the database: PostgreSQL refuses a NUL even in a query (it was a 500 there)."""
    make_category("cat")
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    body = json.dumps({"category": slug, "name": "m", "version": "2"})
    response = post_raw(api(superuser), "/api/v1/model-versions/", body)
    assert response.status_code == 400, response.content
    assert "category" in response.json()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/audit/?category=a%00",
        "/api/v1/audit/?kind=a%00",
        "/api/v1/queues/?category=a%00",
        "/api/v1/categories/a%00/",
        "/api/v1/queues/a%00/",
        "/api/v1/cases/?external_id=a%00",
    ],
)
def test_a_nul_in_the_url_is_a_400(api: Any, url: str) -> None:
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    response = api(superuser).get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/cases/case/?q=a%00",
        "/admin/reviews/work/?label=a%00",
        "/admin/reviews/work/?segment=a%00=b",
        "/admin/cases/case/a%00/change/",
    ],
)
def test_a_nul_in_an_admin_url_is_a_400(url: str) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "b@example.com", "pass-word-123"))
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize(
    "value", ["0066-03-05T08:21:37.1-20:33", "9999-12-31T23:59:59-20:00", "0001-01-01T00:00:00+20:00"]
)
def test_a_date_time_with_an_extreme_offset_is_handled(api: Any, value: str) -> None:
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    response = api(superuser).get(URL, {"created_after": value})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "created_after" in response.json()


@pytest.mark.parametrize("path", ["/admin/cases/case/", "/admin/reviews/decision/"])
@pytest.mark.parametrize("query", ["queue=abc", "category=abc", "category=999999"])
def test_a_non_numeric_admin_filter_is_a_bad_filter_not_a_500(path: str, query: str) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "b@example.com", "pass-word-123"))
    response = client.get(f"{path}?{query}")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert "e=1" in response["Location"]


def test_an_invalid_cursor_is_a_400_naming_it(api: Any) -> None:
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    response = api(superuser).get(URL, {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert "cursor" in response.json()


# --- 7. the API speaks JSON only, and 404s in JSON ---


def test_form_and_multipart_bodies_are_refused_not_half_read(api: Any) -> None:
    superuser = User.objects.create_superuser("boss", "b@example.com", "pass-word-123")
    client = api(superuser)
    form = client.post("/api/v1/categories/", {"slug": "x", "name": "X", "policy": "{}"}, format="multipart")
    assert form.status_code == 415
    assert not Category.objects.filter(slug="x").exists()


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/nope", "/api/v1/cases"])
def test_unknown_api_paths_are_json_404s(api: Any, path: str) -> None:
    response = api(UserFactory(username="someone")).get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "No API endpoint" in response.json()["detail"]


def test_the_schema_advertises_json_bodies_only(api: Any) -> None:
    schema = api(None).get("/api/schema/?format=json").json()
    media_types = {
        media
        for path in schema["paths"].values()
        for operation in path.values()
        for media in operation.get("requestBody", {}).get("content", {})
    }
    assert media_types == {"application/json"}


# --- 8. brute force ---


def test_guessing_tokens_is_throttled_even_for_the_right_token(api: Any) -> None:
    user = UserFactory(username="victim")
    statuses: list[int] = []
    client = APIClient()
    for n in range(40):
        client.credentials(HTTP_AUTHORIZATION=f"Token wrong{n:036d}")
        statuses.append(client.get(URL).status_code)
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}
    right = api(user).get(URL)
    assert right.status_code == 429
    assert "Retry-After" in right


def test_repeated_wrong_admin_passwords_lock_the_login_with_a_clear_message() -> None:
    User.objects.create_superuser("boss", "b@example.com", "right-pass-word-123")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "boss", "password": "wrong"})
        assert response.status_code == 200  # the login form again, with its error
    assert client.post("/admin/login/", {"username": "boss", "password": "wrong"}).status_code == 429
    locked = client.post("/admin/login/", {"username": "boss", "password": "right-pass-word-123"})
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "axes_reset_username boss" in text
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_still_logs_in() -> None:
    User.objects.create_superuser("boss", "b@example.com", "right-pass-word-123")
    client = Client()
    client.post("/admin/login/", {"username": "boss", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "right-pass-word-123"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


# --- every JSON value: never a 5xx, and what is stored reads back ---

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def as_json_numbers(value: Any) -> Any:
    """A JSON value with its numbers as exact decimals: PostgreSQL's jsonb keeps the number a JSON text says
    (-2.648224365408861e+16 comes back as the integer -26482243654088610), which a Python float cannot hold."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(input_value=JSON_VALUES, output_extra=JSON_VALUES, segment_value=JSON_VALUES, n=st.integers(0, 10**9))
def test_any_json_in_intake_is_a_clean_answer_and_reads_back(
    integration: APIClient, input_value: Any, output_extra: Any, segment_value: Any, n: int
) -> None:
    sent = body(
        external_id=f"prop-{n}",
        input={"value": input_value},
        output={"label": "shipping", "extra": output_extra},
        segment={"channel": segment_value},
    )
    response = post_raw(integration, URL, json.dumps(sent))
    assert response.status_code < 500, response.content
    if response.status_code == 201:
        stored = Case.objects.get(pk=response.json()["id"])
        assert as_json_numbers([stored.input, stored.output, stored.segment]) == as_json_numbers(
            [sent["input"], sent["output"], sent["segment"]]
        )
    elif response.status_code != 200:  # 200: a repeat of an external id drawn before
        assert response.status_code == 400


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(output=JSON_VALUES, notes=st.text(max_size=50))
def test_any_json_in_decide_is_a_clean_answer(api: Any, output: Any, notes: str) -> None:
    category = make_category()
    case = make_case(category, confidence=0.8)
    reviewer = UserFactory(roles=["Reviewer"])
    grant_queue(reviewer, case.queue)
    sent = {"action": "correct", "output": output, "notes": notes}
    response = post_raw(api(reviewer), f"{URL}{case.pk}/decide/", json.dumps(sent))
    assert response.status_code < 500, response.content
    if response.status_code == 200:
        assert as_json_numbers(Decision.objects.get(case=case).output_after) == as_json_numbers(output)
    else:
        assert response.status_code == 400
        assert not Decision.objects.filter(case=case).exists()


def json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet=st.sampled_from(["[", "]", "{", "}", '"', "\\", "a", "é", "\n"]), max_size=12)
TRICKY_JSON = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TRICKY_TEXT, children, max_size=3),
    max_leaves=30,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(value=TRICKY_JSON, limit=st.integers(1, 6), ascii_only=st.booleans())
def test_the_depth_scan_agrees_with_the_parsed_depth(value: Any, limit: int, ascii_only: bool) -> None:
    """Brackets, quotes and backslashes inside strings never count; the structure's own brackets always do."""
    from governance.jsonvalues import exceeds_depth

    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert exceeds_depth(raw, limit) == (json_depth(value) > limit)


def test_a_post_with_a_stray_cookie_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page() -> None:
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "not-a-session"
    response = client.post("/api/v1/categories/Not%20allowed./pause/", {"reason": "x"}, content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_a_server_error_under_the_api_answers_json_and_the_admin_keeps_its_page():
    import json as jsonlib

    from django.test import RequestFactory
    from django.urls import get_resolver

    handler = get_resolver().resolve_error_handler(500)
    api_answer = handler(RequestFactory().post("/api/v1/cases/"))
    assert api_answer.status_code == 500
    assert api_answer["Content-Type"] == "application/json"
    assert "Retrying is safe" in jsonlib.loads(api_answer.content)["detail"]
    admin_answer = handler(RequestFactory().get("/admin/"))
    assert admin_answer.status_code == 500
    assert admin_answer["Content-Type"].startswith("text/html")
