"""Webhook deliveries: from an audit event to one delivery per subscribed endpoint, and each delivery sent,
leased, retried and given up.

- `queue_deliveries()` runs inside `governance.events.record_many`, in the transaction that appends the events: a
  delivery exists exactly when its event does, and its job is enqueued after commit (DESIGN.md, Time). With no
  endpoint for the categories involved it costs one small query.
- `deliver()` sends one delivery (the job `governance.jobs.deliver_webhook`): the worker first takes a lease on
  the row by a conditional update, so two workers never send it at once and a succeeded delivery is never sent
  again; the HTTP call (governance.webhooks.client) runs outside any transaction, bounded by the endpoint's
  timeout; a failure schedules the next attempt with exponential backoff until the endpoint's `max_attempts`,
  then the delivery is `failed`.
- `deliver_due()` (the periodic job `deliver_webhooks`) sends whatever is due and was not sent: jobs lost while
  Redis was down, retries whose scheduled job never ran, deliveries whose worker died mid-send.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from governance import queueing
from governance.choices import DeliveryStatus, WebhookEvent
from governance.exceptions import Conflict
from governance.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.webhooks import client
from governance.webhooks.client import AttemptResult

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("hitl.webhooks")

DELIVER_JOB = "governance.jobs.deliver_webhook"
WEBHOOK_EVENTS = frozenset(WebhookEvent.values)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 60 * 60
# A worker holds a delivery this long past its timeout before another may try it (it is presumed dead).
LEASE_MARGIN_SECONDS = 60
# The periodic catch-up stops taking new deliveries after this long, so a run ends well before the next one.
CATCH_UP_BUDGET_SECONDS = 30
CATCH_UP_BATCH = 200


# --- From an audit event to deliveries (inside record_many's transaction) ---


def build_body(event: AuditEvent) -> str:
    """The JSON an endpoint receives for one event; stored as is, so every attempt sends and signs the same bytes."""
    body = {
        "event": event.kind,
        "id": event.seq,
        "created_at": event.created_at.isoformat(),
        "category": event.category_slug,
        "case_id": event.case_id,
        "data": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def queue_deliveries(events: Sequence[AuditEvent]) -> list[WebhookDelivery]:
    """Create a delivery of each event for every active endpoint of its category subscribed to its kind, and
    enqueue their jobs after commit.

    This runs on the intake hot path: events nobody can subscribe to cost nothing, and the rest cost one query
    for the active endpoints of the categories involved, whatever the number of events (bulk intake included).
    """
    candidates = [event for event in events if event.kind in WEBHOOK_EVENTS and event.category_slug]
    if not candidates:
        return []
    endpoints_by_slug: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
    for pk, slug, kinds in WebhookEndpoint.objects.filter(
        active=True, category__slug__in={event.category_slug for event in candidates}
    ).values_list("pk", "category__slug", "events"):
        endpoints_by_slug[slug].append((pk, kinds))
    if not endpoints_by_slug:
        return []
    deliveries: list[WebhookDelivery] = []
    for event in candidates:
        subscribed = [pk for pk, kinds in endpoints_by_slug.get(event.category_slug, ()) if event.kind in kinds]
        if not subscribed:
            continue
        body = build_body(event)
        deliveries.extend(
            WebhookDelivery(
                endpoint_id=pk,
                event_seq=event.seq,
                event_kind=event.kind,
                case_id=event.case_id,
                body=body,
                next_attempt_at=event.created_at,
                created_at=event.created_at,
            )
            for pk in subscribed
        )
    if not deliveries:
        return []
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=500)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: enqueue_deliveries(ids))
    return deliveries


def enqueue_deliveries(delivery_ids: Sequence[int]) -> bool:
    """One job per delivery, put on RQ in one round trip (a bulk intake may make hundreds).

    If Redis is unreachable this logs and returns False: the deliveries stay pending and due, and the periodic
    `deliver_webhooks` job sends them. One failed connection, not one per delivery, so a request never waits
    on a dead Redis more than once.
    """
    return queueing.enqueue_many_now(
        DELIVER_JOB,
        [(pk,) for pk in delivery_ids],
        what=f"{len(delivery_ids)} webhook deliveries",
        catch_up="deliver_webhooks",
    )


# --- Sending ---


def backoff_seconds(attempt: int) -> int:
    """The wait after the `attempt`-th failed attempt: 30 s, 1 min, 2 min, 4 min... at most one hour."""
    return int(min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS))


def deliver(delivery_id: int) -> str:
    """Send one delivery if it is due and no other worker is sending it; record the attempt; plan the next one.

    Returns what happened: `succeeded`, `retrying`, `failed`, or `skipped` (not due, already sent, being sent
    by another worker, or its endpoint inactive). Safe to run twice, or in two workers at once.
    """
    delivery = _claim(delivery_id, timezone.now())
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if json.loads(delivery.body).get("category") != endpoint.category.slug:
        # Cannot happen while an endpoint's category is immutable; if it ever does, nothing leaves the category.
        result = AttemptResult(timezone.now(), 0, None, "the endpoint no longer belongs to the event's category")
        return _record(delivery, result, give_up=True)
    result = _post(delivery)
    outcome = _record(delivery, result)
    if outcome == "retrying":
        _schedule_retry(delivery)
    return outcome


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    """Take the delivery for one attempt: a conditional update that at most one worker can win."""
    delivery = (
        WebhookDelivery.objects.select_related("endpoint__category")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING, endpoint__active=True)
        .first()
    )
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    lease_until = now + timedelta(seconds=3 * endpoint.timeout_seconds + LEASE_MARGIN_SECONDS)
    won = (
        WebhookDelivery.objects.due(now)
        .filter(pk=delivery_id, attempts=delivery.attempts)
        .update(attempts=F("attempts") + 1, sending_until=lease_until)
    )
    if not won:
        return None
    delivery.attempts += 1
    delivery.sending_until = lease_until
    return delivery


def _post(delivery: WebhookDelivery) -> AttemptResult:
    """POST the stored body, signed with the endpoint's current secret, with the headers receivers rely on."""
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": client.USER_AGENT,
        "X-HITL-Event": delivery.event_kind,
        "X-HITL-Delivery": str(delivery.pk),
        "X-HITL-Attempt": str(delivery.attempts),
        "X-HITL-Signature": client.sign(endpoint.secret, body),
    }
    return client.post(endpoint.url, body, headers=headers, timeout_seconds=endpoint.timeout_seconds)


@transaction.atomic
def _record(delivery: WebhookDelivery, result: AttemptResult, *, give_up: bool = False) -> str:
    """Log the attempt and move the delivery on: sent, retried after a backoff, or given up."""
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        error=result.error,
        succeeded=result.succeeded,
    )
    last = {
        "last_status_code": result.status_code,
        "last_error": result.error,
        "last_duration_ms": result.duration_ms,
        "sending_until": None,
    }
    if result.succeeded:
        # The receiver has it: recorded whatever else happened meanwhile, so it is never sent again.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SUCCEEDED, delivered_at=now, next_attempt_at=None, **last
        )
        delivery.status = DeliveryStatus.SUCCEEDED
        return "succeeded"
    if give_up or delivery.attempts >= delivery.endpoint.max_attempts:
        status, next_attempt_at, outcome = DeliveryStatus.FAILED, None, "failed"
    else:
        status, outcome = DeliveryStatus.PENDING, "retrying"
        next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
    # Only while this attempt still holds the lease: a worker presumed dead must not overwrite a later attempt.
    held = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(status=status, next_attempt_at=next_attempt_at, **last)
    if not held:
        return "superseded"
    delivery.status, delivery.next_attempt_at = status, next_attempt_at
    if outcome == "failed":
        logger.warning(
            "Webhook delivery %s to %s failed after %d attempts: %s",
            delivery.pk,
            delivery.endpoint.url,
            delivery.attempts,
            result.error or result.status_code,
        )
    return outcome


def _schedule_retry(delivery: WebhookDelivery) -> None:
    """Ask RQ's scheduler to run the next attempt when it is due; if Redis is down, deliver_webhooks will."""
    assert delivery.next_attempt_at is not None
    delay = max(delivery.next_attempt_at - timezone.now(), timedelta(0))
    queueing.enqueue_later(
        delay, DELIVER_JOB, delivery.pk, what=f"webhook delivery {delivery.pk}'s retry", catch_up="deliver_webhooks"
    )


def deliver_due(*, limit: int = CATCH_UP_BATCH, budget_seconds: float = CATCH_UP_BUDGET_SECONDS) -> dict[str, int]:
    """Send the pending deliveries that are due, oldest first, within a time budget; what is left waits for the
    next run. Each is claimed like any other attempt, so this may run beside the per-delivery jobs."""
    now = timezone.now()
    due_ids = list(
        WebhookDelivery.objects.due(now)
        .filter(endpoint__active=True)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + budget_seconds
    for index, pk in enumerate(due_ids):
        if time.monotonic() >= deadline:
            outcomes["left_for_next_run"] = len(due_ids) - index
            break
        outcomes[deliver(pk)] += 1
    return {"due": len(due_ids), **outcomes}


@transaction.atomic
def retry_now(*, delivery: WebhookDelivery, user: User | None) -> WebhookDelivery:
    """Send a pending or failed delivery at once (a failed one gets one more attempt); never a succeeded one."""
    updated = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=DeliveryStatus.SUCCEEDED)
        .update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now())
    )
    if not updated:
        raise Conflict("It was delivered already; a delivery is never sent twice.")
    logger.info("Webhook delivery %s retried now by %s", delivery.pk, user.get_username() if user else "system")
    queueing.enqueue_after_commit(DELIVER_JOB, delivery.pk)
    delivery.refresh_from_db()
    return delivery
