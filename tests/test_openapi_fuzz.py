"""Schemathesis over the whole OpenAPI schema, as a superuser and as a reviewer: no 5xx, and no answer that
breaks the schema (status codes, content types, bodies). Bounded: a few examples per operation, so the whole
run takes a minute or two; CI runs it on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import UserFactory, grant_queue, grant_submit, make_case, make_category

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 20

# Responses must be server-error free and as the schema says; what is sent is the generator's business.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def load_schema() -> Any:
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGIHandler()
    return schema


@pytest.fixture
def world() -> dict[str, User]:
    """Something for every endpoint to find: a category with cases in its queues, a superuser and a reviewer."""
    category = make_category("fuzz")
    for confidence in (0.3, 0.8, 0.99):
        make_case(category, confidence=confidence, external_id=f"fuzz-{confidence}")
    superuser = User.objects.create_superuser("fuzz-admin", "a@example.com", "pass-word-123")
    reviewer = UserFactory(username="fuzz-reviewer", roles=["Reviewer"])
    for queue in category.queues.all():
        grant_queue(reviewer, queue)
    grant_submit(reviewer, category)
    return {"superuser": superuser, "reviewer": reviewer}


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """The app runs in-process, in the test's transaction: as Django's test client does, it must not close the
    database connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def fuzz(user: User) -> list[str]:
    """Every operation, EXAMPLES_PER_OPERATION examples each; returns the failures (empty when all held)."""
    token, _ = Token.objects.get_or_create(user=user)
    headers = {"Authorization": f"Token {token.key}"}
    failures: list[str] = []
    schema = load_schema()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 (collect every operation's failure, then report them all)
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    return failures


@pytest.mark.parametrize("role", ["superuser", "reviewer"])
def test_the_api_keeps_to_its_schema_and_never_fails_with_a_5xx(world: dict[str, User], role: str) -> None:
    failures = fuzz(world[role])
    assert not failures, "\n\n".join(failures)
