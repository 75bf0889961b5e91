"""The one way any part of HITL Desk records that something happened: `record()` appends to the audit chain
and queues the webhook deliveries that follow from it (governance.webhooks).

Each AuditEvent holds sha256(previous hash + its own canonical JSON). Appends lock the single chain-head row,
so concurrent writers (several web and worker processes on PostgreSQL) take turns and the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from governance import webhooks
from governance.models import AuditChainHead, AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class EventSpec:
    """What happened, before it gets its place in the chain."""

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    actor: User | None = None
    category_slug: str = ""
    case_id: int | None = None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an audit payload")


def normalise_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so what is hashed is exactly what the database will give back."""
    result: dict[str, Any] = json.loads(json.dumps(payload, default=_json_default))
    return result


def canonical_json(event: AuditEvent) -> str:
    body = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "kind": event.kind,
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "category_slug": event.category_slug,
        "case_id": event.case_id,
        "payload": event.payload,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode()).hexdigest()


def record(
    kind: str,
    *,
    payload: dict[str, Any] | None = None,
    actor: User | None = None,
    category_slug: str = "",
    case_id: int | None = None,
) -> AuditEvent:
    """Append one event to the audit chain (inside the caller's transaction, so it commits with the change)."""
    spec = EventSpec(kind=kind, payload=payload or {}, actor=actor, category_slug=category_slug, case_id=case_id)
    return record_many([spec])[0]


def ensure_chain_head() -> None:
    """The chain head row exists (the migration creates it; a test database flush removes it)."""
    AuditChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


@transaction.atomic(savepoint=False)  # inside the caller's transaction when there is one; a failure fails it all
def record_many(specs: Iterable[EventSpec]) -> list[AuditEvent]:
    """Append several events under one lock of the chain head: how bulk intake stays one round trip.

    The events' webhook deliveries are created alongside (one more query, to find the endpoints) and their
    jobs enqueued once the transaction commits.
    """
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    now = timezone.now()
    events: list[AuditEvent] = []
    for spec in specs:
        actor = spec.actor
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=now,
            kind=spec.kind,
            actor_id=actor.pk if actor is not None else None,
            actor_username=actor.get_username() if actor is not None else SYSTEM_ACTOR,
            category_slug=spec.category_slug,
            case_id=spec.case_id,
            payload=normalise_payload(spec.payload),
            prev_hash=head.hash,
        )
        event.hash = compute_hash(head.hash, event)
        head.seq, head.hash = event.seq, event.hash
        events.append(event)
    if events:
        AuditEvent.objects.bulk_create(events)
        AuditChainHead.objects.filter(pk=1).update(seq=head.seq, hash=head.hash)
        # In the same transaction: a webhook delivery exists exactly when its event does.
        webhooks.queue_deliveries(events)
    return events


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    event_id: int | None
    message: str


def verify_chain(events: Iterator[AuditEvent] | None = None) -> tuple[int, ChainProblem | None]:
    """Walk the chain in order; return how many rows were checked and the first problem, if any."""
    if events is None:
        events = AuditEvent.objects.order_by("seq").iterator(chunk_size=5000)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in events:
        if event.seq != expected_seq:
            return checked, ChainProblem(
                event.seq, event.pk, f"sequence jumps from {expected_seq - 1} to {event.seq}: rows are missing"
            )
        if event.prev_hash != expected_prev:
            return checked, ChainProblem(event.seq, event.pk, "prev_hash does not match the previous row's hash")
        recomputed = compute_hash(event.prev_hash, event)
        if recomputed != event.hash:
            return checked, ChainProblem(event.seq, event.pk, "hash does not match the row's content: it was altered")
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return checked, ChainProblem(checked + 1, None, "the chain head row is missing: the chain cannot be anchored")
    if head.seq > checked:
        return checked, ChainProblem(
            checked + 1,
            None,
            f"the chain head says {head.seq} rows but only {checked} exist: the last rows are missing",
        )
    if head.seq < checked or head.hash != expected_prev:
        return checked, ChainProblem(
            head.seq, None, f"the chain head ({head.seq} rows) does not match the last row ({checked}): it was altered"
        )
    return checked, None
