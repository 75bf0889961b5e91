"""What bench/load_traffic.py's locust users share, none of it touching locust or gevent: what each request
may answer (`EXPECTED`), the `State` of the process (the spec, the counts by name and status, the unexpected
answers kept, what was sent, held and decided so far), and one case body and the request headers.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from typing import Any

from common_data import CHANNELS, LABELS, LOCALES, MODEL_LABEL, REGIONS, RULES, TEXTS, TIERS

UNEXPECTED_KEPT = 40
RECENT_KEPT = 5000

# What each request may answer; anything else is reported (a 5xx always fails the run).
EXPECTED: dict[str, frozenset[int]] = {
    "intake": frozenset({201}),
    "intake repeat": frozenset({200}),
    "intake duplicate pair": frozenset({200, 201}),
    "bulk": frozenset({200}),
    "case (integration)": frozenset({200}),
    "queue next": frozenset({200, 204}),
    "decide": frozenset({200}),
    "release": frozenset({200}),
    "batch-approve": frozenset({200}),
    "queues": frozenset({200}),
    "cases of a queue": frozenset({200}),
    "case": frozenset({200}),
    "metrics": frozenset({200}),
    # The races: a case another reviewer holds or has decided (409); released meanwhile (200: then it is ours);
    # escalated meanwhile out of the queues this reviewer works: 404 if that hid it from them, 403 (may not work
    # that queue) if they still see it, as the reviewer who escalated it does.
    "race: claim held by another": frozenset({200, 403, 404, 409}),
    "race: decide a final case": frozenset({409}),
}
DECIDING = {"decide", "batch-approve"}


class State:
    """What the users of this process share: the spec, the counts, and what was sent and decided so far."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.rng = random.Random(spec["seed"])
        self.tokens = {kind: list(spec["tokens"][kind]) for kind in ("integration", "reviewer", "manager")}
        self.counts: dict[str, Counter[int]] = {}
        self.unexpected: list[dict[str, Any]] = []
        self.unexpected_count = 0
        self.submitted: set[tuple[str, str]] = set()
        self.created: Counter[tuple[str, str]] = Counter()  # 201s and bulk "created", per case
        self.sent: deque[tuple[bytes, str, str, int]] = deque(maxlen=RECENT_KEPT)  # body, slug, id, case id
        self.case_ids: deque[int] = deque(maxlen=RECENT_KEPT)
        self.held: dict[int, str] = {}  # case id -> the reviewer (token) holding it
        self.final: deque[int] = deque(maxlen=RECENT_KEPT)
        self.decisions: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()  # idempotency checks: "<what> ok" / "<what> bad"
        self.serial = 0
        self.inflight = 0
        self.stopping = False
        self.window_start: float | None = None
        self.window_created = 0

    def next_external_id(self) -> tuple[str, str]:
        self.serial += 1
        slugs = self.spec["categories"]
        slug = slugs[self.serial % len(slugs)]["slug"]
        return slug, f"{self.spec['id_prefix']}-{self.serial:08d}"

    def record(self, name: str, status: int, body: bytes | None) -> bool:
        """Count the answer; keep it if unexpected. True when expected."""
        self.counts.setdefault(name, Counter())[status] += 1
        expected = status in EXPECTED[name]
        if not expected:
            self.keep(name, status, body)
        return expected

    def keep(self, name: str, status: int, body: bytes | None) -> None:
        """An answer for the report: a status not expected, or a body that broke a promise."""
        self.unexpected_count += 1
        if len(self.unexpected) < UNEXPECTED_KEPT:
            text = (body or b"")[:400].decode(errors="replace")
            self.unexpected.append({"name": name, "status": status, "body": text, "at": round(time.time(), 3)})

    def count_created(self, key: tuple[str, str]) -> None:
        self.created[key] += 1
        if self.window_start is not None:
            self.window_created += 1


def case_body(rng: random.Random, slug: str, external_id: str) -> dict[str, Any]:
    """A submission whose confidence, label, rules and value spread the cases over every route."""
    label = rng.choices(LABELS, weights=(30, 25, 20, 15, 8, 2))[0]
    band = rng.random()
    confidence = round(
        rng.uniform(0.3, 0.6) if band < 0.2 else rng.uniform(0.6, 0.9) if band < 0.5 else rng.uniform(0.9, 1.0), 4
    )
    body: dict[str, Any] = {
        "category": slug,
        "external_id": external_id,
        "input": {
            "text": rng.choice(TEXTS),
            "order_id": f"ORD-{rng.randint(100000, 999999)}",
            "locale": rng.choice(LOCALES),
        },
        "output": {"label": label, "text": f"Classified as {label}.", "score": confidence},
        "confidence": confidence,
        "model_version": MODEL_LABEL,
        "segment": {"channel": rng.choice(CHANNELS), "tier": rng.choice(TIERS), "region": rng.choice(REGIONS)},
        "priority": "urgent" if rng.random() < 0.05 else "normal",
        "customer_ref": f"cust-{rng.randint(1, 5000)}",
    }
    if rng.random() < 0.3:
        body["rules_fired"] = rng.sample(RULES, rng.randint(1, 2))
    if rng.random() < 0.7:
        body["value"] = f"{rng.lognormvariate(4.5, 1.2):.2f}"
    return body


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", "Content-Type": "application/json", "Accept": "application/json"}
