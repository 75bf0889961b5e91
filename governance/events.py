"""The one way any part of HITL Desk records that something happened: `record()` appends to the audit trail and
queues the webhook deliveries that follow from it (governance.webhooks).

What the trail is, and what it proves:

- **One chain per category** (events of no category form the chain ""). Each event holds
  HMAC-SHA256(AUDIT_KEY, previous hash of its chain + its own canonical JSON). Appends lock only their chain's
  head row, so intake, decisions and jobs of two categories never wait on each other, and one category's
  events stay in one line across every process.
- **The key lives outside the database** (`settings.AUDIT_KEY`, from the environment): whoever can rewrite rows
  but does not hold the key cannot forge a hash, so an edited event, or one whose followers were re-hashed,
  shows at once.
- **Rows bound from above:** a higher layer registers a `Binding` (reviews binds each decision to the event that
  recorded it, by a digest of the decision's content in the event's payload). Changing a bound row, or adding
  one behind the trail's back, breaks the binding.
- **The database refuses** UPDATE, DELETE and TRUNCATE on the append-only tables, and lets a chain head move only
  forward (governance.append_only).
- **Anchors outside the database:** hourly, each chain's head (sequence and hash) is written to the anchor log
  (`settings.AUDIT_ANCHOR_FILE`), the application log, the model stewards' notices and the `audit.anchor`
  webhook. Deleting the tail of a chain and rewinding its head, or emptying everything, then contradicts an
  anchor that `verify_chain` reads back.

What it cannot prove: someone who holds both the database and the key, and who also rewrites every copy of the
anchors, can write a different history. Keep the key and the anchors away from the database's administrators.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from governance import webhooks
from governance.models import AuditChainHead, AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("hitl.audit")

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


def content_digest(content: dict[str, Any]) -> str:
    """sha256 of a row's canonical JSON: what a bound row's event carries (see `Binding`)."""
    text = json.dumps(normalise_payload(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_json(event: AuditEvent) -> str:
    return _canonical_text(event, event.created_at.isoformat())


def _canonical_text(event: AuditEvent, created_at: str) -> str:
    """The event's hashed fields as one JSON object, keys sorted, its time stamp as `created_at` (ISO text)."""
    body = {name: getattr(event, name) for name in AuditEvent.HASHED_FIELDS}
    body["created_at"] = created_at
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return keyed_hash(str(settings.AUDIT_KEY).encode(), prev_hash, canonical_json(event))


def keyed_hash(key: bytes, prev_hash: str, text: str) -> str:
    """The chain's link: HMAC-SHA256 under the audit key of the previous hash followed by a row's canonical text."""
    return hmac.new(key, (prev_hash + text).encode(), hashlib.sha256).hexdigest()


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


def _lock_heads(chains: set[str]) -> dict[str, AuditChainHead]:
    """Lock the heads of these chains, in name order (so two writers of several chains cannot deadlock),
    creating the head of a chain that has none yet."""
    locked = AuditChainHead.objects.select_for_update().filter(chain__in=chains).order_by("chain")
    heads = {head.chain: head for head in locked}
    missing = chains - heads.keys()
    if missing:
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain=chain, seq=0, hash=GENESIS_HASH) for chain in sorted(missing)],
            ignore_conflicts=True,  # another writer may create the same head at the same moment
        )
        heads = {head.chain: head for head in locked.all()}
    if heads.keys() != chains:
        raise RuntimeError(f"Could not create the audit chain heads of {sorted(chains - heads.keys())}.")
    return heads


@transaction.atomic(savepoint=False)  # inside the caller's transaction when there is one; a failure fails it all
def record_many(specs: Iterable[EventSpec]) -> list[AuditEvent]:
    """Append several events, locking each chain's head once: how bulk intake stays one round trip.

    The events' webhook deliveries are created alongside (one more query, to find the endpoints) and their
    jobs enqueued once the transaction commits.
    """
    specs = list(specs)
    if not specs:
        return []
    heads = _lock_heads({spec.category_slug for spec in specs})
    now = timezone.now()
    key = str(settings.AUDIT_KEY).encode()
    created_at = now.isoformat()
    events: list[AuditEvent] = []
    texts: list[str] = []
    for spec in specs:
        head = heads[spec.category_slug]
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
        # compute_hash(), with the key and the time stamp's text made once for the whole batch.
        text = _canonical_text(event, created_at)
        event.hash = keyed_hash(key, head.hash, text)
        head.seq, head.hash = event.seq, event.hash
        events.append(event)
        texts.append(text)
    _insert(events, texts)
    for head in heads.values():
        AuditChainHead.objects.filter(pk=head.pk).update(seq=head.seq, hash=head.hash)
    # In the same transaction: a webhook delivery exists exactly when its event does.
    webhooks.queue_deliveries(events)
    return events


def _insert(events: list[AuditEvent], texts: list[str]) -> None:
    """Insert the events, whose canonical JSON texts (what was hashed) are `texts`, and set their ids: on
    PostgreSQL in one statement whose one parameter is the rows as a JSON document, elsewhere by `bulk_create`.

    `bulk_create` costs 10,000 events (an SLA sweep's breaches) about a second on PostgreSQL: Django prepares
    every value of every field in Python, and psycopg, binding client-side, quotes its arrays element by element
    (every double quote of every payload escaped by a regex callback). The canonical text of an event is already
    a JSON object holding every column but the hashes (the normalised payload among them, so what is stored is
    what was hashed); each row of the document is that text with the two hashes added, quoted as one string,
    and the database reads it with `json_to_recordset`.
    """
    connection = connections[router.db_for_write(AuditEvent)]
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create(events)
        return
    meta = AuditEvent._meta
    quote = connection.ops.quote_name
    by_name = {field.name: field for field in meta.concrete_fields}
    fields = [by_name[name] for name in AuditEvent.STORED_FIELDS]
    columns = ", ".join(quote(str(field.column)) for field in fields)
    types = ", ".join(f"{quote(str(field.column))} {field.db_type(connection)}" for field in fields)
    # A row: the canonical object (whose keys are the column names) reopened for the two hashes, hex digits that
    # need no escaping.
    rows = [
        f'{text[:-1]},"prev_hash":"{event.prev_hash}","hash":"{event.hash}"}}'
        for event, text in zip(events, texts, strict=True)
    ]
    document = f"[{','.join(rows)}]"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} FROM json_to_recordset(%s::json) AS "
        f"src({types}) RETURNING {quote(str(by_name['id'].column))}, {quote('category_slug')}, {quote('seq')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [document])
        ids = {(chain, seq): pk for pk, chain, seq in cursor.fetchall()}
    for event in events:
        event.pk = ids[(event.category_slug, event.seq)]
        event._state.adding = False
        event._state.db = connection.alias


# --- Bindings: rows of higher layers whose content an event vouches for ---


@dataclass(frozen=True)
class Binding:
    """Rows of a higher layer bound to the events that recorded them.

    The event carries the row's id under `payload_key` and `content_digest(content)` under `digest_key`;
    `rows()` yields (id, content) for every such row, in the same form the digest was made from.
    """

    name: str
    payload_key: str
    digest_key: str
    rows: Callable[[], Iterator[tuple[int, dict[str, Any]]]]


_BINDINGS: dict[str, Binding] = {}


def register_binding(binding: Binding) -> None:
    """Called from a higher app's `ready()`: governance never imports the apps above it."""
    _BINDINGS[binding.name] = binding


# --- Verification ---


@dataclass(frozen=True)
class ChainProblem:
    chain: str
    seq: int | None
    event_id: int | None
    message: str

    def describe(self) -> str:
        where = f"chain {self.chain!r}" if self.chain else "the global chain"
        at = f" at seq {self.seq}" if self.seq is not None else ""
        row = f" (event id {self.event_id})" if self.event_id is not None else ""
        return f"{where}{at}{row}: {self.message}"


@dataclass
class Verification:
    checked: int = 0
    chains: int = 0
    anchors: int = 0
    bound: int = 0
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _verify_one_chain(
    chain: str, head: AuditChainHead | None, anchored: dict[int, dict[str, Any]]
) -> tuple[int, ChainProblem | None]:
    """Walk one chain in order; `anchored` holds its anchors by seq, each checked against its row on the way."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    rows = AuditEvent.objects.filter(category_slug=chain).order_by("seq").iterator(chunk_size=5000)
    for event in rows:
        if event.seq != expected_seq:
            return checked, ChainProblem(
                chain, event.seq, event.pk, f"sequence jumps from {expected_seq - 1} to {event.seq}: rows are missing"
            )
        if event.prev_hash != expected_prev:
            return checked, ChainProblem(chain, event.seq, event.pk, "prev_hash does not match the previous row's hash")
        if not hmac.compare_digest(compute_hash(event.prev_hash, event), event.hash):
            return checked, ChainProblem(
                chain, event.seq, event.pk, "hash does not match the row's content under the audit key: it was altered"
            )
        anchor = anchored.get(event.seq)
        if anchor is not None and anchor["hash"] != event.hash:
            return checked, ChainProblem(
                chain,
                event.seq,
                event.pk,
                f"the row's hash differs from the anchor of {anchor.get('at', '?')}: it was rewritten",
            )
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    beyond = [seq for seq in anchored if seq > checked]
    if beyond:
        anchor = anchored[min(beyond)]
        return checked, ChainProblem(
            chain,
            anchor["seq"],
            None,
            f"the anchor of {anchor.get('at', '?')} holds this row (hash {anchor['hash'][:12]}...) but it is gone: "
            "rows were deleted and the head rewound",
        )
    if head is None:
        return checked, ChainProblem(chain, None, None, "the chain's head row is missing")
    if head.seq > checked:
        return checked, ChainProblem(
            chain,
            checked + 1,
            None,
            f"the head says {head.seq} rows but only {checked} exist: the last rows are missing",
        )
    if head.seq < checked or head.hash != expected_prev:
        return checked, ChainProblem(
            chain, head.seq, None, f"the head ({head.seq} rows) does not match the last row ({checked}): it was altered"
        )
    return checked, None


def read_anchors(path: Path | None = None) -> list[dict[str, Any]]:
    """The anchors written so far (one JSON object a line: chain, seq, hash, at); unreadable lines are skipped."""
    path = Path(settings.AUDIT_ANCHOR_FILE) if path is None else path
    if not path.exists():
        return []
    anchors = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            anchor = json.loads(line)
        except ValueError:
            continue
        if isinstance(anchor, dict) and isinstance(anchor.get("seq"), int) and isinstance(anchor.get("hash"), str):
            anchors.append(anchor)
    return anchors


def _check_bindings() -> tuple[int, ChainProblem | None]:
    bound = 0
    for binding in _BINDINGS.values():
        vouched: dict[int, tuple[str, AuditEvent]] = {}
        events = AuditEvent.objects.filter(**{f"payload__{binding.payload_key}__isnull": False}).iterator(
            chunk_size=5000
        )
        for event in events:
            row_id = event.payload.get(binding.payload_key)
            if isinstance(row_id, int):
                vouched[row_id] = (str(event.payload.get(binding.digest_key, "")), event)
        for row_id, content in binding.rows():
            entry = vouched.pop(row_id, None)
            if entry is None:
                return bound, ChainProblem(
                    "", None, None, f"{binding.name} {row_id} has no audit event: it was added behind the trail's back"
                )
            digest, event = entry
            if not hmac.compare_digest(digest, content_digest(content)):
                return bound, ChainProblem(
                    event.category_slug,
                    event.seq,
                    event.pk,
                    f"{binding.name} {row_id} no longer matches the content this event recorded: it was altered",
                )
            bound += 1
        for row_id, (_, event) in vouched.items():
            return bound, ChainProblem(
                event.category_slug,
                event.seq,
                event.pk,
                f"{binding.name} {row_id} recorded here is gone: it was deleted",
            )
    return bound, None


def verify_chain(*, anchors: list[dict[str, Any]] | None = None) -> Verification:
    """Walk every chain in order, checking the anchors on the way, then the bindings; stop at the first problem.

    `anchors` defaults to the anchor log (`settings.AUDIT_ANCHOR_FILE`). A chain that only an anchor still names
    (its rows and head emptied) is walked too, so its loss shows.
    """
    result = Verification()
    anchors = read_anchors() if anchors is None else anchors
    result.anchors = len(anchors)
    anchored: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for anchor in anchors:
        if anchor["seq"] > 0:
            anchored[str(anchor.get("chain", ""))][anchor["seq"]] = anchor
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    chains = set(heads) | set(anchored)
    chains |= set(AuditEvent.objects.order_by().values_list("category_slug", flat=True).distinct())
    for chain in sorted(chains):
        checked, problem = _verify_one_chain(chain, heads.get(chain), anchored.get(chain, {}))
        result.checked += checked
        result.chains += 1
        if problem is not None:
            result.problem = problem
            return result
    result.bound, result.problem = _check_bindings()
    return result


# --- Anchors ---


def write_anchor_line(anchor: dict[str, Any]) -> None:
    path = Path(settings.AUDIT_ANCHOR_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(anchor, sort_keys=True) + "\n")


def current_heads() -> list[AuditChainHead]:
    return list(AuditChainHead.objects.filter(seq__gt=0).order_by("chain"))
