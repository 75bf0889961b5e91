"""Fixtures shared by the whole suite. The suite runs on the embedded default (SQLite) and, in CI, again on
PostgreSQL (DATABASE_URL); tests marked `postgres` need real row locks and run only there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from governance import append_only
from tests.factories import UserFactory

APPEND_ONLY_TABLES = ("governance_auditevent", "reviews_decision")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Real hashing costs ~100 ms a user; the tests make many users and test no hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://... (CI does)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _append_only_tables_flushable(request: pytest.FixtureRequest) -> Iterator[None]:
    """SQLite empties tables with DELETE after a transactional test, which our append-only triggers refuse:
    such a test drops them at its end (before the flush), and every SQLite database test makes sure they exist
    when it starts."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    uses_db = marker is not None or "db" in names or "transactional_db" in names or "live_server" in names
    transactional = bool(marker and marker.kwargs.get("transaction")) or "transactional_db" in names
    transactional = transactional or "live_server" in names
    if not uses_db or connection.vendor != "sqlite":
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    _run_on_append_only_tables(append_only.create_statements)
    yield
    if transactional:
        _run_on_append_only_tables(append_only.drop_statements)


def _run_on_append_only_tables(statements: Callable[[str, str], list[str]]) -> None:
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            for statement in statements("sqlite", table):
                cursor.execute(statement)


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def _make(username: str | None = None, *, roles: list[str] | None = None, **kwargs: Any) -> User:
        if username:
            kwargs["username"] = username
        return UserFactory(roles=roles or [], **kwargs)

    return _make


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", "pass-word-123")


@pytest.fixture
def api() -> Callable[[User | None], APIClient]:
    """An API client authenticated by token as the given user (None: anonymous)."""

    def _client(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _client
