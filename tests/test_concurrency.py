"""Real concurrency on PostgreSQL: threads with their own connections racing on intake and the audit chain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from cases.models import Case
from governance import events
from governance.models import AuditEvent, ModelVersion
from tests.factories import grant_submit, make_category

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in n threads released together; each thread closes its own connection."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        try:
            barrier.wait(timeout=10)
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def case_body(external_id: str, model_version: str = "model@1") -> dict[str, Any]:
    return {
        "category": "cat",
        "external_id": external_id,
        "input": {"text": "hello"},
        "output": {"label": "shipping"},
        "confidence": 0.99,
        "model_version": model_version,
    }


@pytest.fixture
def integration_client(api, make_user):
    user = make_user("integration")
    grant_submit(user, make_category("cat"))
    return lambda: api(user)


def test_concurrent_duplicate_intake_creates_exactly_one_case(integration_client):
    responses = race(
        THREADS, lambda i: integration_client().post("/api/v1/cases/", case_body("same-id"), format="json")
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201], [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Case.objects.filter(external_id="same-id").count() == 1
    assert AuditEvent.objects.filter(kind="case.routed").count() == 1


def test_concurrent_overlapping_bulk_submissions_store_each_id_once(integration_client):
    ids = [f"b-{i}" for i in range(40)]

    def submit(i: int) -> Any:
        order = ids if i % 2 == 0 else list(reversed(ids))
        return integration_client().post("/api/v1/cases/bulk/", {"cases": [case_body(x) for x in order]}, format="json")

    responses = race(4, submit)
    assert all(r.status_code == 200 for r in responses), [r.content for r in responses]
    assert Case.objects.filter(external_id__in=ids).count() == len(ids)
    created = sum(r.json()["created"] for r in responses)
    existing = sum(r.json()["existing"] for r in responses)
    assert created == len(ids)
    assert existing == 3 * len(ids)


def test_a_new_model_version_seen_by_concurrent_requests_is_registered_once(integration_client):
    responses = race(
        THREADS,
        lambda i: integration_client().post("/api/v1/cases/", case_body(f"m-{i}", "fresh@9"), format="json"),
    )
    assert [r.status_code for r in responses] == [201] * THREADS, [r.content for r in responses]
    assert ModelVersion.objects.filter(name="fresh", version="9").count() == 1
    assert {r.json()["route"] for r in responses} == {"full_review"}


def test_the_audit_chain_stays_one_unbroken_line_under_concurrent_writers():
    per_thread = 25
    race(THREADS, lambda i: [events.record("case.routed", payload={"t": i, "n": n}) for n in range(per_thread)])
    checked, problem = events.verify_chain()
    assert problem is None, problem
    assert checked == THREADS * per_thread
    assert AuditEvent.objects.count() == THREADS * per_thread
