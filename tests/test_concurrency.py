"""Real concurrency on PostgreSQL: threads with their own connections racing on intake and the audit chain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from cases.models import Case, Queue
from governance import events
from governance.models import AuditEvent, ModelVersion
from reviews.models import Decision
from tests.factories import grant_queue, grant_submit, make_case, make_category

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
    result = events.verify_chain()
    assert result.ok, result.problem
    assert result.checked == THREADS * per_thread
    assert AuditEvent.objects.count() == THREADS * per_thread


def _reviewers(make_user, queue, n):
    users = [make_user(f"rev{i}", roles=["Reviewer"]) for i in range(n)]
    for user in users:
        grant_queue(user, queue)
    return users


def test_twenty_reviewers_claiming_next_at_once_get_twenty_different_cases(api, make_user):
    category = make_category("cat")
    for _ in range(25):
        make_case(category, confidence=0.8)
    queue = Queue.objects.get(slug="cat-quick")
    users = _reviewers(make_user, queue, 20)
    responses = race(20, lambda i: api(users[i]).post("/api/v1/queues/cat-quick/next/"))
    assert [r.status_code for r in responses] == [200] * 20, [r.content for r in responses]
    claimed = [r.json()["id"] for r in responses]
    assert len(set(claimed)) == 20
    holders = dict(Case.objects.filter(claimed_by__isnull=False).values_list("id", "claimed_by__username"))
    assert set(holders) == set(claimed)
    assert {holders[r.json()["id"]] for r in responses} == {u.username for u in users}


def test_two_reviewers_deciding_one_case_exactly_one_wins(api, make_user):
    category = make_category("cat")
    case = make_case(category, confidence=0.8)
    users = _reviewers(make_user, Queue.objects.get(slug="cat-quick"), 2)
    actions = [{"action": "approve"}, {"action": "reject", "reason_code": "wrong_label"}]
    responses = race(2, lambda i: api(users[i]).post(f"/api/v1/cases/{case.pk}/decide/", actions[i], format="json"))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    assert Decision.objects.filter(case=case).count() == 1
    winner = Decision.objects.get(case=case)
    case.refresh_from_db()
    assert case.status == ("approved" if winner.action == "approve" else "rejected")


def test_ten_reviewers_claiming_one_case_at_once_get_one_200_and_nine_409s(api, make_user):
    category = make_category("cat")
    queue = Queue.objects.get(slug="cat-quick")
    users = _reviewers(make_user, queue, 10)
    for _ in range(5):  # the race was lost in most rounds before: several rounds make a 500 show
        case = make_case(category, confidence=0.8)
        responses = race(10, lambda i, case=case: api(users[i]).post(f"/api/v1/cases/{case.pk}/claim/"))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [409] * 9, [r.content for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()["claimed_by"]
        assert all(winner in r.json()["detail"] for r in responses if r.status_code == 409)
        case.refresh_from_db()
        assert case.claimed_by.username == winner


def test_a_claim_racing_a_decision_never_fails_with_a_500(api, make_user):
    category = make_category("cat")
    users = _reviewers(make_user, Queue.objects.get(slug="cat-quick"), 2)
    for _ in range(5):
        case = make_case(category, confidence=0.8)
        calls = [
            lambda case=case: api(users[0]).post(f"/api/v1/cases/{case.pk}/claim/"),
            lambda case=case: api(users[1]).post(
                f"/api/v1/cases/{case.pk}/decide/", {"action": "approve"}, format="json"
            ),
        ]
        responses = race(2, lambda i, calls=calls: calls[i]())
        assert {r.status_code for r in responses} <= {200, 409}, [r.content for r in responses]
        assert 200 in {r.status_code for r in responses}


def test_audit_appends_in_two_categories_never_wait_on_each_other():
    """One writer holds category a's chain head (its transaction still open); a writer to b goes straight on,
    while a second writer to a has to wait: the lock is per chain, not global."""
    from django.db import DatabaseError, transaction

    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_a() -> None:
        try:
            with transaction.atomic():
                events.record("case.routed", category_slug="a", payload={"n": 1})
                holding.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    def append(slug: str) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '1s'")
                events.record("case.routed", category_slug=slug, payload={"n": 2})
            outcome[slug] = "appended"
        except DatabaseError as exc:
            outcome[slug] = f"waited: {exc}"
        finally:
            connection.close()

    events.record("case.routed", category_slug="a", payload={"n": 0})  # both heads exist before the race
    events.record("case.routed", category_slug="b", payload={"n": 0})
    holder = threading.Thread(target=hold_a)
    holder.start()
    assert holding.wait(timeout=10)
    for slug in ("b", "a"):
        worker = threading.Thread(target=append, args=(slug,))
        worker.start()
        worker.join(timeout=15)
    release.set()
    holder.join(timeout=15)
    assert outcome["b"] == "appended"
    assert outcome["a"].startswith("waited") and "lock timeout" in outcome["a"]
    assert events.verify_chain().ok


def test_a_pause_never_deadlocks_with_an_intake_that_holds_the_chain_head():
    """An intake's transaction holds its category's audit chain head and, at COMMIT, checks its case's foreign key
    to the category (a key-share lock on the category row). A pause locks the category row, then waits for the
    head. With FOR UPDATE on the category the two wait on each other (a deadlock: one of them a 500); the pause
    takes FOR NO KEY UPDATE, which a foreign-key check does not wait for, so both go through."""
    from django.db import transaction
    from django.utils import timezone

    from governance.models import Category
    from governance.services.categories import pause_category

    category = make_category("cat")
    events.record("case.routed", category_slug="cat", payload={"n": 0})  # the head exists before the race
    holding, paused = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def intake() -> None:
        try:
            with transaction.atomic():
                events.record("case.routed", category_slug="cat", payload={"n": 1})  # the head, locked
                Case.objects.create(
                    category_id=category.pk,
                    external_id="held-head",
                    confidence=0.5,
                    model_version=ModelVersion.objects.get(category=category),
                    route="full_review",
                    policy_version=1,
                    created_at=timezone.now(),
                )
                holding.set()
                paused.wait(timeout=3)  # the pause is now waiting for the head (it cannot finish before this ends)
            outcome["intake"] = "committed"
        except Exception as exc:  # noqa: BLE001 - the deadlock's error is what this test looks for
            outcome["intake"] = f"failed: {exc}"
        finally:
            connection.close()

    def pause() -> None:
        try:
            assert holding.wait(timeout=10)
            timer = threading.Timer(1.5, paused.set)  # past PostgreSQL's 1 s deadlock_timeout
            timer.start()
            pause_category(category=Category.objects.get(pk=category.pk), user=None, reason="Too many rejections")
            outcome["pause"] = "paused"
        except Exception as exc:  # noqa: BLE001
            outcome["pause"] = f"failed: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=intake), threading.Thread(target=pause)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcome == {"intake": "committed", "pause": "paused"}
    assert Category.objects.get(pk=category.pk).paused
    assert Case.objects.filter(external_id="held-head").exists()
    assert events.verify_chain().ok
