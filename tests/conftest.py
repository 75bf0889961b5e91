"""Fixtures shared by the whole suite. The suite runs on the embedded default (SQLite) and, in CI, again on
PostgreSQL (DATABASE_URL); tests marked `postgres` need real row locks and run only there."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cases.services import prediction
from governance import append_only
from tests.factories import UserFactory

APPEND_ONLY_TABLES = ("governance_auditevent", "reviews_decision")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Property tests explore new examples on a laptop; in CI (CI=true) they replay the same ones every run, so a
    # run fails only for a change of the code, never by the draw.
    hypothesis.settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        hypothesis.settings.load_profile("ci")

    # Real hashing costs ~100 ms a user; the tests make many users and test no hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://... (CI does)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _flush_past_the_guards() -> Iterator[None]:
    """A transactional test ends with Django's flush, which empties every table (TRUNCATE on PostgreSQL, DELETE on
    SQLite) and which the audit trail's triggers rightly refuse. The test harness, and only it, lifts them for the
    flush, inside the flush's own transaction, so they are back in place before the next test starts."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        vendor = self.connection.vendor
        lift, restore = [], []
        for table in APPEND_ONLY_TABLES:
            lift += append_only.drop_statements(vendor, table)
            restore += append_only.create_statements(vendor, table)
        lift += append_only.head_drop_statements(vendor)
        restore += append_only.head_create_statements(vendor)
        original(self, [*lift, *sql_list, *restore])

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    BaseDatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """An RQ worker run in the test process installs its own SIGINT and SIGTERM handlers (a warm shutdown) and
    leaves them behind; a later Ctrl-C or a CI runner's SIGTERM would then be swallowed mid-test. Each test gets the
    handlers it started with back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _anchor_log_per_test(settings: Any, tmp_path: Any) -> None:
    """Each test writes its audit anchors to a log of its own (the real one is under var/)."""
    settings.AUDIT_ANCHOR_FILE = tmp_path / "audit-anchors.jsonl"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """API throttles count in the cache, the KPIs keep sums of stored parts in theirs, and intake keeps the loaded
    built-in models (two tests' models trained on the same data share bytes and hash); all outlive a test, so each
    test starts with them empty."""
    for each in caches.all():
        each.clear()
    prediction.clear_predictor_cache()
    yield


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
