"""The traffic of bench/load.py: locust users against the gunicorn that bench/load.py started, run headless as a
library in a process of its own, so gevent's monkey-patching never reaches a process that runs Django.

    .venv/bin/python bench/load_traffic.py SPEC.json

SPEC (written by bench/load.py) names the server, the API tokens of the people, the categories and their queues,
the phase (``mixed`` or ``intake``), the users, the seconds, and where to write the results and the external ids
submitted. Three kinds of user:

- ``Integration``: submits cases. Mostly one new case a request; some small bulk batches (5-20, a few items
  repeating cases already sent, which must come back ``existing``); repeats of an already-sent case (200 with the
  same id); concurrent duplicates (the same new case posted twice at once: one 201 and one 200, the same id); reads
  back a case it sent.
- ``Reviewer``: claims the next case of one of its queues (quick, full, audit) and decides it (approve, correct,
  reject with a reason, escalate with a reason, or releases it); batch-approves a few waiting cases of a quick queue;
  reads the queues, a queue's waiting cases, a case, a category's metrics; and probes the races: claiming a case
  another reviewer holds, deciding a case already final (409 expected; a claim may also find the case released,
  200, or escalated out of the reviewer's queues, 404).
- ``Manager``: claims and decides (final) the escalation and expert queues' cases.

Every response is counted by request name and status; a status outside the name's expected ones is kept (with
the start of its body) for the report. The ``intake`` phase runs only new single intakes, with no wait, to
measure the rate after a warm-up. Progress goes to stdout as one JSON object a line; the results to SPEC's
``results`` file, the external ids (``slug<TAB>external_id``) to its ``ids`` file.
"""

from __future__ import annotations

# locust patches at import too; first, so that nothing imported before it holds an unpatched socket or ssl.
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import gevent  # noqa: E402
from common_data import LABELS  # noqa: E402
from load_traffic_state import State, case_body, headers  # noqa: E402
from locust import between, constant, events, task  # noqa: E402
from locust.contrib.fasthttp import FastHttpUser  # noqa: E402
from locust.env import Environment  # noqa: E402

PROGRESS_SECONDS = 5.0


STATE: State


class Caller(FastHttpUser):
    """A user whose every request is counted by name and status, and parsed when it succeeded."""

    abstract = True
    auth: dict[str, str]
    name_of_person = ""

    def call(self, method: str, path: str, name: str, payload: Any = None) -> tuple[int, Any]:
        data = json.dumps(payload) if payload is not None else None
        STATE.inflight += 1
        try:
            with self.client.request(
                method, path, name=name, data=data, headers=self.auth, catch_response=True
            ) as response:
                status = response.status_code or 0
                content = response.content
                if STATE.record(name, status, content):
                    response.success()
                else:
                    response.failure(f"unexpected {status}")
        finally:
            STATE.inflight -= 1
        parsed = json.loads(content) if status in (200, 201) and content else None
        return status, parsed


CallerT = TypeVar("CallerT", bound=Caller)


def guarded(work: Callable[[CallerT], None]) -> Callable[[CallerT], None]:
    """A task that does nothing once the phase is ending: every request started is allowed to finish, so what the
    client counted is what the server did."""

    def run(self: CallerT) -> None:
        if not STATE.stopping:
            work(self)

    run.__name__ = work.__name__
    return run


# --- Integration: intake ------------------------------------------------------------------------------------


class Submitter(Caller):
    """The service user that submits cases (one account, many concurrent requests, as an integration has)."""

    abstract = True

    def on_start(self) -> None:
        self.auth = headers(STATE.tokens["integration"][0])

    def submit_new(self, name: str = "intake") -> tuple[int, Any]:
        slug, external_id = STATE.next_external_id()
        body = json.dumps(case_body(STATE.rng, slug, external_id)).encode()
        STATE.submitted.add((slug, external_id))
        status, case = self.post_body(body, name)
        if status == 201:
            STATE.count_created((slug, external_id))
            STATE.sent.append((body, slug, external_id, case["id"]))
            STATE.case_ids.append(case["id"])
        return status, case

    def post_body(self, body: bytes, name: str) -> tuple[int, Any]:
        return self.call("POST", "/api/v1/cases/", name, json.loads(body))


class IntakeOnly(Submitter):
    """The intake phase: new single cases back to back (its own class: locust users inherit their bases' tasks)."""

    wait_time = constant(0)

    @task
    @guarded
    def intake(self) -> None:
        self.submit_new()


class Integration(Submitter):
    """Intake of every kind, and reading back what was sent."""

    weight = 6
    wait_time = between(0.0, 0.2)

    @task(20)
    @guarded
    def intake(self) -> None:
        self.submit_new()

    @task(2)
    @guarded
    def bulk(self) -> None:
        items: list[dict[str, Any]] = []
        expect: list[tuple[str, str, int | None]] = []  # slug, external id, the known id of a repeat
        for _ in range(STATE.rng.randint(5, 20)):
            if STATE.sent and STATE.rng.random() < 0.1:
                body, slug, external_id, case_id = STATE.rng.choice(STATE.sent)
                items.append(json.loads(body))
                expect.append((slug, external_id, case_id))
            else:
                slug, external_id = STATE.next_external_id()
                items.append(case_body(STATE.rng, slug, external_id))
                STATE.submitted.add((slug, external_id))
                expect.append((slug, external_id, None))
        status, answer = self.call("POST", "/api/v1/cases/bulk/", "bulk", {"cases": items})
        if status != 200:
            return
        for item, (slug, external_id, known), result in zip(items, expect, answer["results"], strict=True):
            if known is None and result.get("result") == "created":
                STATE.count_created((slug, external_id))
                STATE.sent.append((json.dumps(item).encode(), slug, external_id, result["id"]))
                STATE.case_ids.append(result["id"])
            elif known is not None and result.get("result") == "existing" and result.get("id") == known:
                STATE.checks["bulk repeat ok"] += 1
            else:
                STATE.checks["bulk item bad"] += 1
                STATE.keep("bulk item", status, json.dumps(result)[:400].encode())

    @task(3)
    @guarded
    def repeat(self) -> None:
        if not STATE.sent:
            return
        body, _slug, _external_id, case_id = STATE.rng.choice(STATE.sent)
        status, case = self.post_body(body, "intake repeat")
        if status == 200:
            STATE.checks["repeat ok" if case["id"] == case_id else "repeat bad"] += 1

    @task(1)
    @guarded
    def duplicate_pair(self) -> None:
        """The same new case twice at once: one creates it, the other gets it back; never two."""
        slug, external_id = STATE.next_external_id()
        body = json.dumps(case_body(STATE.rng, slug, external_id)).encode()
        STATE.submitted.add((slug, external_id))
        pair = [gevent.spawn(self.post_body, body, "intake duplicate pair") for _ in range(2)]
        gevent.joinall(pair)
        answers = [g.value for g in pair if g.value is not None]
        statuses = sorted(status for status, _ in answers)
        ids = {case["id"] for status, case in answers if case is not None}
        for status, _ in answers:
            if status == 201:
                STATE.count_created((slug, external_id))
        if statuses == [200, 201] and len(ids) == 1:
            STATE.checks["duplicate pair ok"] += 1
            (case_id,) = ids
            STATE.sent.append((body, slug, external_id, case_id))
        else:
            STATE.checks["duplicate pair bad"] += 1
            STATE.keep("intake duplicate pair", statuses[-1] if statuses else 0, json.dumps(statuses).encode())

    @task(2)
    @guarded
    def read_case(self) -> None:
        if STATE.case_ids:
            self.call("GET", f"/api/v1/cases/{STATE.rng.choice(STATE.case_ids)}/", "case (integration)")


# --- Reviewers and escalation managers: claims and decisions ------------------------------------------------

FINAL = frozenset({"approved", "corrected", "rejected"})


class Worker(Caller):
    """Someone who claims the next case of their queues and decides it."""

    abstract = True
    kind = ""
    queue_weights: dict[str, int] = {}

    def on_start(self) -> None:
        person = STATE.tokens[self.kind].pop()
        self.auth = headers(person["token"])
        self.name_of_person = person["username"]
        self.queues = [
            (category["queues"][kind], kind, weight)
            for category in STATE.spec["categories"]
            for kind, weight in self.queue_weights.items()
        ]

    def pick_queue(self) -> tuple[str, str]:
        slug, kind, _ = STATE.rng.choices(self.queues, weights=[w for *_, w in self.queues])[0]
        return slug, kind

    def work_next(self) -> None:
        slug, kind = self.pick_queue()
        status, case = self.call("POST", f"/api/v1/queues/{slug}/next/", "queue next")
        if status == 200:
            STATE.held[case["id"]] = self.name_of_person
            self.decide(case, kind)

    def verdict(self, kind: str) -> dict[str, Any]:
        raise NotImplementedError

    def decide(self, case: dict[str, Any], kind: str) -> None:
        payload = self.verdict(kind)
        if payload["action"] in ("correct", "flag"):
            label = (case.get("output") or {}).get("label")
            payload["output"] = {"label": STATE.rng.choice([x for x in LABELS if x != label]), "text": "Corrected."}
        if payload["action"] == "release":
            status, _ = self.call("POST", f"/api/v1/cases/{case['id']}/release/", "release")
        else:
            payload["seconds_spent"] = STATE.rng.randint(5, 120)
            status, after = self.call("POST", f"/api/v1/cases/{case['id']}/decide/", "decide", payload)
            if status == 200:
                STATE.decisions[payload["action"]] += 1
                if after["status"] in FINAL and self.kind == "reviewer":
                    STATE.final.append(case["id"])
        STATE.held.pop(case["id"], None)


class Reviewer(Worker):
    weight = 3
    wait_time = between(0.1, 0.6)
    kind = "reviewer"
    queue_weights = {"quick": 5, "full": 3, "audit": 1}

    def verdict(self, kind: str) -> dict[str, Any]:
        rng = STATE.rng
        if kind == "audit":
            return {"action": "confirm"} if rng.random() < 0.8 else {"action": "flag", "reason_code": "wrong_label"}
        draw = rng.random()
        if draw < 0.55:
            return {"action": "approve"}
        if draw < 0.70:
            return {"action": "correct", "reason_code": "wrong_label"}
        if draw < 0.82:
            return {"action": "reject", "reason_code": rng.choice(["wrong_label", "bad_draft", "other"])}
        if draw < 0.92:
            return {"action": "escalate", "reason_code": rng.choice(["policy_legal", "high_risk", "needs_expert"])}
        return {"action": "release"}

    @task(10)
    @guarded
    def work(self) -> None:
        self.work_next()

    @task(1)
    @guarded
    def batch_approve(self) -> None:
        category = STATE.rng.choice(STATE.spec["categories"])
        slug = category["queues"]["quick"]
        status, page = self.call("GET", f"/api/v1/cases/?queue={slug}&status=queued", "cases of a queue")
        if status != 200 or not page["results"]:
            return
        ids = [case["id"] for case in page["results"][: STATE.rng.randint(1, 5)]]
        status, result = self.call("POST", f"/api/v1/queues/{slug}/batch-approve/", "batch-approve", {"cases": ids})
        if status == 200:
            STATE.decisions["approve (batch)"] += len(result["approved"])
            STATE.final.extend(result["approved"])

    @task(2)
    @guarded
    def read_queues(self) -> None:
        self.call("GET", "/api/v1/queues/", "queues")

    @task(2)
    @guarded
    def read_queue_cases(self) -> None:
        slug, _ = self.pick_queue()
        self.call("GET", f"/api/v1/cases/?queue={slug}&status=queued", "cases of a queue")

    @task(2)
    @guarded
    def open_and_decide(self) -> None:
        """Claim next, read the case's page (with its decisions), then decide."""
        slug, kind = self.pick_queue()
        status, case = self.call("POST", f"/api/v1/queues/{slug}/next/", "queue next")
        if status == 200:
            STATE.held[case["id"]] = self.name_of_person
            self.call("GET", f"/api/v1/cases/{case['id']}/", "case")
            self.decide(case, kind)

    @task(1)
    @guarded
    def metrics(self) -> None:
        slug = STATE.rng.choice(STATE.spec["categories"])["slug"]
        self.call("GET", f"/api/v1/metrics/{slug}/?window=1h", "metrics")

    @task(1)
    @guarded
    def race_claim(self) -> None:
        """Claim a case another reviewer holds: 409, unless they let go of it meanwhile (then it is ours)."""
        others = [case_id for case_id, holder in list(STATE.held.items()) if holder != self.name_of_person]
        if not others:
            return
        case_id = STATE.rng.choice(others)
        status, case = self.call("POST", f"/api/v1/cases/{case_id}/claim/", "race: claim held by another")
        if status == 200:
            queue = case.get("queue") or ""
            kind = next((k for s, k, _ in self.queues if s == queue), "")
            if kind:
                STATE.held[case_id] = self.name_of_person
                self.decide(case, kind)
            else:
                self.call("POST", f"/api/v1/cases/{case_id}/release/", "release")

    @task(1)
    @guarded
    def race_decide_final(self) -> None:
        if STATE.final:
            case_id = STATE.rng.choice(STATE.final)
            self.call("POST", f"/api/v1/cases/{case_id}/decide/", "race: decide a final case", {"action": "approve"})


class Manager(Worker):
    weight = 1
    wait_time = between(0.2, 1.0)
    kind = "manager"
    queue_weights = {"escalation": 2, "expert": 1}

    def verdict(self, kind: str) -> dict[str, Any]:
        draw = STATE.rng.random()
        if draw < 0.6:
            return {"action": "approve"}
        if draw < 0.85:
            return {"action": "reject", "reason_code": "other"}
        return {"action": "correct", "reason_code": "wrong_label"}

    @task(5)
    @guarded
    def work(self) -> None:
        self.work_next()

    @task(1)
    @guarded
    def read_queues(self) -> None:
        self.call("GET", "/api/v1/queues/", "queues")


# --- The run ------------------------------------------------------------------------------------------------


def latency(env: Environment) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (name, _method), entry in sorted(env.stats.entries.items()):
        out[name] = {
            "count": entry.num_requests,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time or 0, 1),
        }
    return out


def answered() -> int:
    return sum(sum(counter.values()) for counter in STATE.counts.values())


def progress(started: float) -> None:
    while True:
        gevent.sleep(PROGRESS_SECONDS)
        statuses: Counter[int] = Counter()
        for counter in STATE.counts.values():
            statuses.update(counter)
        line = {
            "elapsed": round(time.monotonic() - started, 1),
            "requests": sum(statuses.values()),
            "server_errors": sum(n for status, n in statuses.items() if status >= 500 or status == 0),
            "created": sum(STATE.created.values()),
        }
        print(json.dumps(line), flush=True)


def main(spec_path: str) -> int:
    global STATE
    spec = json.loads(Path(spec_path).read_text())
    STATE = State(spec)
    phase = spec["phase"]
    classes: list[type[Caller]] = [IntakeOnly] if phase == "intake" else [Integration, Reviewer, Manager]
    env = Environment(user_classes=list(classes), host=spec["host"], events=events)
    runner = env.create_local_runner()
    started = time.monotonic()
    reporter = gevent.spawn(progress, started)
    runner.start(spec["users"], spawn_rate=spec["users"])
    gevent.sleep(spec["warmup_seconds"])
    STATE.window_start = time.monotonic()
    STATE.window_created = 0
    gevent.sleep(spec["seconds"])
    # --min-requests: on past the minutes until that many answers (within the spec's limit).
    limit = STATE.window_start + spec.get("max_seconds", spec["seconds"])
    while answered() < spec.get("min_requests", 0) and time.monotonic() < limit:
        gevent.sleep(0.5)
    window = time.monotonic() - STATE.window_start
    window_created = STATE.window_created
    # Let every request in flight finish (tasks start nothing new once stopping), then stop the users.
    STATE.stopping = True
    deadline = time.monotonic() + 60
    while STATE.inflight and time.monotonic() < deadline:
        gevent.sleep(0.05)
    drained = STATE.inflight == 0
    runner.quit()
    reporter.kill()
    total = answered()
    results = {
        "phase": phase,
        "users": spec["users"],
        "seconds": round(time.monotonic() - started, 1),
        "window_seconds": round(window, 2),
        "window_created": window_created,
        "created_per_s": round(window_created / window, 1),
        "requests": total,
        "requests_per_s": round(total / (time.monotonic() - started), 1),
        "drained": drained,
        "counts": {name: {str(k): v for k, v in sorted(c.items())} for name, c in sorted(STATE.counts.items())},
        "latency_ms": latency(env),
        "unexpected_count": STATE.unexpected_count,
        "unexpected": STATE.unexpected,
        "submitted": len(STATE.submitted),
        "created_responses": sum(STATE.created.values()),
        "created_twice": sorted(f"{s}/{e}" for (s, e), n in STATE.created.items() if n > 1)[:50],
        "decisions": dict(sorted(STATE.decisions.items())),
        "checks": dict(sorted(STATE.checks.items())),
    }
    Path(spec["ids"]).write_text("".join(f"{slug}\t{external_id}\n" for slug, external_id in sorted(STATE.submitted)))
    Path(spec["results"]).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
