"""Intake benchmark: single-case latency and bulk rate of the REST API, against DESIGN.md "Budgets" and the floor.

What it measures, on two scratch PostgreSQL databases it creates (and drops at the end, also on Ctrl-C): the
project's (``--db-name``) and the floor's (``<db-name>_floor``). The floor is ``bench/floor/``: a plain DRF app
that validates the same payload with one ModelSerializer and stores it in one table (its bulk endpoint: one
``many=True`` serializer, one ``bulk_create``). Both are served by gunicorn on the same settings (``-w 1`` sync
worker unless ``--workers``, ``--timeout 120``, gunicorn's defaults otherwise), on the same PostgreSQL.

1. Rounds (``--rounds``, default 5), alternated: the project, then the floor, on the same payloads (fresh external
   ids every round): N single ``POST``s each (default 2,000, after 100 uncounted warm-up requests and one bulk
   batch to each), then M bulk batches of 500 each (default 10). Per round: the request rate, p50 and p99 of
   both, and the ratios project / floor; then the median of each ratio against the budgets (single intake at
   least 0.5x the floor's requests per second, bulk at least 0.5x its cases per second).
   Single requests go from one keep-alive ``http.client`` connection, sequential (``--clients`` for more, each
   its own connection and thread), so the client does not starve the servers on this 2-core machine. The
   servers are not instrumented: the figure is the client-side round trip on loopback, timed from sending the
   request to reading the last byte of the response. That is an upper bound of server-side time (it adds the
   loopback TCP hop and, since gunicorn's sync worker closes every connection, a TCP connect of ~0.1 ms).
   Budget: p50 < 15 ms and p99 < 50 ms server-side, on the project's requests of all rounds together; a PASS
   here therefore holds server-side too. For scale, the same is measured for an unauthenticated POST (a 401
   that touches no database): what HTTP + gunicorn + Django middleware + DRF cost alone.
2. ``--scaling``: single intake from ``--scaling-clients`` concurrent connections (default 4) to 1 gunicorn worker,
   then to 2, alternated over the rounds, for the project (budget: 2 workers more than 1.6x the rate of 1) and
   for the floor (what the machine allows: the client and PostgreSQL share its 2 cores).
3. Bulk in-process, on the last round's rows with new ids: ``cases.services.submit_cases`` (the service without
   HTTP, JSON and serializers) and a plain ``Case.objects.bulk_create`` of the same rows (route fields fixed,
   queue and model version set; building the objects is not timed), alone and with the history and audit rows
   intake also stores -> cases/s, and the bulk API's rate as a ratio of them (how far it is from the ORM).
4. Where the time goes, in this process after the timed phases (so on the table they filled): the SQL statements
   of one single intake, one bulk request and one ``submit_cases`` batch (Django's test client and an execute
   wrapper timing each statement, grouped by shape), and their time split into total and time executing SQL.
   ``--profile`` also prints every statement shape and a cProfile of 200 single intakes, one bulk request and
   one ``submit_cases`` batch.

The tables grow during the run (with the defaults, to about 53,000 cases in the project's and 36,000 in the
floor's), and intake reads the category's recent cases, so every round's JSON records how many cases the
project's table held when it started. Both servers run production's throttles at a rate no run reaches
(``HITL_THROTTLE_USER=1000/second``): 6000/minute would refuse a fast burst of rounds.

Run (PostgreSQL, trust auth; the database named in the URL is not used, the scratch ones are ``--db-name``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/intake.py
    DATABASE_URL=... .venv/bin/python bench/intake.py --scaling
    DATABASE_URL=... .venv/bin/python bench/intake.py --requests 500 --bulk-batches 2 --rounds 2 --profile

Results: a table on stdout and ``bench/results/intake-<date>.json``. The script refuses SQLite unless
``--allow-sqlite`` (then the scratch databases are temporary files), refuses to use the ``test``, ``postgres``
and template databases, and refuses a scratch database that already exists unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from common import (
    CHANNELS,
    LABELS,
    LOCALES,
    MODEL_LABEL,
    REGIONS,
    ROOT,
    RULES,
    SENSITIVE_POLICY,
    TEXTS,
    TIERS,
    BenchError,
    HttpClient,
    ScratchDatabase,
    Server,
    add_run_options,
    bench_parser,
    configure_django,
    create_bench_category,
    create_integration_user,
    latency_summary,
    logged_queries,
    migrate,
    percentile,
    print_rows,
    profile_text,
    release,
    row,
    run_main,
    run_record,
    save_results,
    scratch_databases,
    verdict,
)

if TYPE_CHECKING:
    from cases.services.intake import IntakeItem
    from governance.models import Category

CATEGORY_SLUG = "bench-intake"
BULK_BATCH = 500
WARMUP_REQUESTS = 100
UNAUTHENTICATED_REQUESTS = 200
FLOOR_DIR = ROOT / "bench" / "floor"
# Both servers' user throttle (HITL_THROTTLE_USER): see run().
THROTTLE_RATE = "1000/second"
PROGRESS_EVERY = 500
QUERY_RUNS = ("single_api", "bulk_api_500", "submit_cases_500")

# DESIGN.md "Budgets".
TARGET_P50_MS = 15.0
TARGET_P99_MS = 50.0
TARGET_SINGLE_RATIO = 0.5
TARGET_BULK_FLOOR_RATIO = 0.5
TARGET_SCALING = 1.6


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    model_version_id: int
    quick_queue_id: int
    user_id: int
    token: str


def create_fixture() -> Fixture:
    """The category (varied routes: sensitive label and rule, high-value limit, an 80 % ramp), its active model
    version, and the integration user with governance.submit_case on it and a DRF token."""
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    bench = create_bench_category(
        slug=CATEGORY_SLUG, name="Bench intake", policy={**SENSITIVE_POLICY, "high_value_amount": Decimal("5000.00")}
    )
    user = create_integration_user()
    assign_perm("governance.submit_case", user, bench.category)
    token = Token.objects.create(user=user)
    return Fixture(
        category_id=bench.category.pk,
        model_version_id=bench.model_version.pk,
        quick_queue_id=bench.queues["quick"].pk,
        user_id=user.pk,
        token=token.key,
    )


# --- Request bodies -------------------------------------------------------------------------------------------


def case_body(rng: random.Random, external_id: str) -> dict[str, Any]:
    """One realistic submission; confidences spread over the full-review, quick-review and auto bands."""
    label = rng.choices(LABELS, weights=(30, 25, 20, 15, 8, 2))[0]
    band = rng.random()
    if band < 0.2:
        confidence = rng.uniform(0.3, 0.6)
    elif band < 0.5:
        confidence = rng.uniform(0.6, 0.9)
    else:
        confidence = rng.uniform(0.9, 1.0)
    confidence = round(confidence, 4)
    body: dict[str, Any] = {
        "category": CATEGORY_SLUG,
        "external_id": external_id,
        "input": {
            "text": rng.choice(TEXTS),
            "order_id": f"ORD-{rng.randint(100000, 999999)}",
            "locale": rng.choice(LOCALES),
            "attachments": rng.randint(0, 3),
        },
        "output": {
            "label": label,
            "text": f"Classified as {label}.",
            "reasoning": f"The message mentions {label.replace('_', ' ')}-related terms.",
            "score": confidence,
        },
        "confidence": confidence,
        "model_version": MODEL_LABEL,
        "segment": {"channel": rng.choice(CHANNELS), "tier": rng.choice(TIERS), "region": rng.choice(REGIONS)},
        "priority": "urgent" if rng.random() < 0.05 else "normal",
        "customer_ref": f"cust-{rng.randint(1, 20000)}",
    }
    if rng.random() < 0.3:
        body["rules_fired"] = rng.sample(RULES, rng.randint(1, 2))
    if rng.random() < 0.7:
        body["value"] = f"{rng.lognormvariate(4.5, 1.2):.2f}"
    return body


def intake_item(body: dict[str, Any], category: Category) -> IntakeItem:
    """The IntakeItem the API's serializer would build from this body."""
    from cases.services.intake import IntakeItem

    value = body.get("value")
    return IntakeItem(
        category=category,
        external_id=body["external_id"],
        input=body["input"],
        output=body["output"],
        confidence=body["confidence"],
        model_version=body["model_version"],
        rules_fired=body.get("rules_fired", []),
        value=Decimal(value) if value is not None else None,
        segment=body.get("segment", {}),
        priority=body.get("priority", "normal"),
        customer_ref=body.get("customer_ref", ""),
    )


# --- Measurements ---------------------------------------------------------------------------------------------


def request_summary(seconds: list[float], wall: float) -> dict[str, float]:
    """Round trips in ms (p50, p90, p99, max, mean) and the request rate."""
    ms = [s * 1000 for s in seconds]
    return {**latency_summary(ms, (50, 90, 99), digits=3), "requests_per_s": round(len(ms) / wall, 1)}


@dataclass(frozen=True)
class Target:
    """Where a run sends its cases, the project's API or the floor's, and the status a stored case answers."""

    name: str
    port: int
    token: str
    single_path: str
    bulk_path: str
    bulk_status: int

    def client(self) -> HttpClient:
        return HttpClient(self.port, self.token)


def project_target(port: int, token: str) -> Target:
    return Target("project", port, token, "/api/v1/cases/", "/api/v1/cases/bulk/", bulk_status=200)


def floor_target(port: int, token: str) -> Target:
    return Target("floor", port, token, "/floor/cases/", "/floor/cases/bulk/", bulk_status=201)


def single_bodies(rng: random.Random, prefix: str, count: int) -> list[bytes]:
    return [json.dumps(case_body(rng, f"{prefix}-{i:07d}")).encode() for i in range(count)]


def post_singles(
    client: HttpClient, target: Target, bodies: list[bytes], *, quiet: bool
) -> tuple[list[float], Counter[str]]:
    """Each body in turn on one connection: the round trips, and the routes the project answered."""
    times: list[float] = []
    routes: Counter[str] = Counter()
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post(target.single_path, body)
        if status != 201:
            raise BenchError(f"POST {target.single_path} ({target.name}) answered {status}: {data[:500]!r}")
        times.append(elapsed)
        route = json.loads(data).get("route")
        if route is not None:
            routes[route] += 1
        if not quiet and i % PROGRESS_EVERY == 0:
            # The last stretch on its own too: a drift as the table grows shows here, not in the running total.
            recent, so_far = sorted(times[-PROGRESS_EVERY:]), sorted(times)
            print(
                f"  single ({target.name}): {i}/{len(bodies)}  last {len(recent)}: p50 "
                f"{percentile(recent, 50) * 1000:.1f} ms, p99 {percentile(recent, 99) * 1000:.1f} ms  all: p50 "
                f"{percentile(so_far, 50) * 1000:.1f} ms, p99 {percentile(so_far, 99) * 1000:.1f} ms",
                flush=True,
            )
    return times, routes


@dataclass
class SingleRun:
    """One target's single-case phase: its figures (for the JSON) and its round trips (for pooling)."""

    summary: dict[str, Any]
    times: list[float]
    wall: float
    closed_by_server: int


def run_single(target: Target, bodies: list[bytes], *, clients: int, quiet: bool) -> SingleRun:
    """The bodies as single POSTs: on one keep-alive connection, sequential; or spread over `clients` threads, each
    with its own connection (to load several gunicorn workers), the rate taken over the wall time of them all."""
    connections = [target.client() for _ in range(clients)]
    shares = [bodies[i::clients] for i in range(clients)]
    results: list[tuple[list[float], Counter[str]]] = [([], Counter()) for _ in range(clients)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = post_singles(connections[n], target, shares[n], quiet=quiet or clients > 1)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    start = time.perf_counter()
    if clients == 1:
        results[0] = post_singles(connections[0], target, bodies, quiet=quiet)
    else:
        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - start
    closed = sum(c.closed_by_server for c in connections)
    for connection in connections:
        connection.close()
    if errors:
        raise errors[0]
    times = [t for share, _ in results for t in share]
    routes: Counter[str] = sum((r for _, r in results), Counter())
    summary: dict[str, Any] = {**request_summary(times, wall), "clients": clients}
    if routes:
        summary["routes"] = dict(sorted(routes.items()))
    return SingleRun(summary=summary, times=times, wall=wall, closed_by_server=closed)


def run_unauthenticated(port: int) -> dict[str, Any]:
    """Unauthenticated POSTs (401, no database work): what HTTP, gunicorn, middleware and DRF cost alone."""
    client = HttpClient(port, token=None)
    body = json.dumps({"category": CATEGORY_SLUG}).encode()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(UNAUTHENTICATED_REQUESTS):
        status, data, elapsed = client.post("/api/v1/cases/", body)
        if status != 401:
            raise BenchError(f"An unauthenticated POST answered {status}: {data[:300]!r}")
        times.append(elapsed)
    wall = time.perf_counter() - start
    client.close()
    return request_summary(times, wall)


def batches_of(rng: random.Random, prefix: str, batches: int) -> list[list[dict[str, Any]]]:
    return [[case_body(rng, f"{prefix}-{b:03d}-{i:04d}") for i in range(BULK_BATCH)] for b in range(batches)]


def rate_summary(batch_seconds: list[float]) -> dict[str, Any]:
    total = sum(batch_seconds)
    return {
        "batches": len(batch_seconds),
        "cases": len(batch_seconds) * BULK_BATCH,
        "seconds": round(total, 3),
        "cases_per_s": round(len(batch_seconds) * BULK_BATCH / total, 1),
        "batch_ms_min": round(min(batch_seconds) * 1000, 1),
        "batch_ms_median": round(sorted(batch_seconds)[len(batch_seconds) // 2] * 1000, 1),
        "batch_ms_max": round(max(batch_seconds) * 1000, 1),
    }


def cases_in_table() -> int:
    from cases.models import Case

    return Case.objects.count()


def run_bulk(target: Target, bodies: list[bytes], quiet: bool) -> tuple[dict[str, Any], list[float]]:
    """Each bulk body in turn on one connection: the rate, and each batch's round trip."""
    client = target.client()
    times: list[float] = []
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post(target.bulk_path, body)
        answer = json.loads(data) if status == target.bulk_status else {}
        if status != target.bulk_status or answer.get("created") != BULK_BATCH:
            raise BenchError(f"POST {target.bulk_path} ({target.name}) answered {status}: {data[:500]!r}")
        times.append(elapsed)
        if not quiet:
            print(
                f"  bulk ({target.name}): batch {i}/{len(bodies)}  {elapsed * 1000:.0f} ms  ({len(body) // 1024} KiB)",
                flush=True,
            )
    client.close()
    kib = round(sum(map(len, bodies)) / len(bodies) / 1024, 1)
    return {**rate_summary(times), "request_body_kib": kib}, times


def run_submit_cases(fixture: Fixture, batches: list[list[dict[str, Any]]], quiet: bool) -> dict[str, Any]:
    from django.contrib.auth.models import User

    from cases.services.intake import submit_cases
    from governance.models import Category

    category = Category.objects.get(pk=fixture.category_id)
    user = User.objects.get(pk=fixture.user_id)
    before = cases_in_table()
    times: list[float] = []
    for i, batch in enumerate(batches, 1):
        items = [intake_item(body, category) for body in batch]
        start = time.perf_counter()
        results = submit_cases(user=user, items=items)
        elapsed = time.perf_counter() - start
        if sum(created for _, created in results) != BULK_BATCH:
            raise BenchError("submit_cases did not create every case of a fresh batch.")
        times.append(elapsed)
        if not quiet:
            print(f"  submit_cases: batch {i}/{len(batches)}  {elapsed * 1000:.0f} ms", flush=True)
    return {**rate_summary(times), "cases_in_table_before": before}


def run_bulk_create(
    fixture: Fixture, batches: list[list[dict[str, Any]]], quiet: bool, *, with_history_and_audit: bool = False
) -> dict[str, Any]:
    """Plain ORM `bulk_create` of the case rows; with_history_and_audit also bulk-creates the other rows intake
    stores for each case (its simple-history row and its audit event), with no routing, checks or hash chain."""
    from django.utils import timezone

    from cases.models import Case, Queue
    from cases.services.intake import segment_key
    from governance.models import AuditEvent, Category, ModelVersion

    category = Category.objects.get(pk=fixture.category_id)
    model_version = ModelVersion.objects.get(pk=fixture.model_version_id)
    queue = Queue.objects.get(pk=fixture.quick_queue_id)
    before = cases_in_table()
    times: list[float] = []
    for i, batch in enumerate(batches, 1):
        now = timezone.now()
        cases = []
        for body in batch:
            item = intake_item(body, category)
            cases.append(
                Case(
                    category=category,
                    external_id=item.external_id,
                    input=item.input,
                    output=item.output,
                    confidence=body["confidence"],  # the bench's bodies always carry their own answer
                    model_version=model_version,
                    rules_fired=item.rules_fired,
                    value=item.value,
                    segment=item.segment,
                    segment_key=segment_key(item.segment),
                    customer_ref=item.customer_ref,
                    priority=item.priority,
                    route="quick_review",
                    route_reasons=["Confidence is below the auto threshold."],
                    policy_version=1,
                    audit_sampled=False,
                    audit_draw={},
                    queue=queue,
                    due_at=now + timedelta(hours=24),
                    status="queued",
                )
            )
        start = time.perf_counter()
        Case.objects.bulk_create(cases, batch_size=BULK_BATCH)
        if with_history_and_audit:
            Case.history.bulk_history_create(cases, batch_size=BULK_BATCH, default_change_reason="bench")
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        seq=10**12 + i * BULK_BATCH + n,  # far above the real chain; the scratch DB is dropped after
                        created_at=now,
                        kind="case.routed",
                        actor_username="bench",
                        category_slug=category.slug,
                        case_id=case.pk,
                        payload={"route": case.route, "reasons": case.route_reasons, "queue": queue.slug},
                        prev_hash="0" * 64,
                        hash=f"{10**12 + i * BULK_BATCH + n:064x}",
                    )
                    for n, case in enumerate(cases)
                ],
                batch_size=BULK_BATCH,
            )
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        label = "bulk_create (cases+history+audit)" if with_history_and_audit else "bulk_create"
        if not quiet:
            print(f"  {label}: batch {i}/{len(batches)}  {elapsed * 1000:.0f} ms", flush=True)
    return {**rate_summary(times), "cases_in_table_before": before}


# --- The floor: a plain DRF app beside the project, and the rounds against it --------------------------------


def start_floor(database: ScratchDatabase, env: dict[str, str], *, workers: int) -> tuple[Server, str]:
    """Migrate the floor's scratch database, take its API token, and serve it on the project's gunicorn settings."""
    floor_env = {**env, "DATABASE_URL": database.url, "DJANGO_SETTINGS_MODULE": "floor.settings"}
    setup = subprocess.run(
        [sys.executable, "manage.py", "floor_setup"], cwd=FLOOR_DIR, env=floor_env, capture_output=True, text=True
    )
    if setup.returncode != 0:
        raise BenchError(f"The floor's floor_setup failed ({setup.returncode}):\n{setup.stderr[-2000:]}")
    token = setup.stdout.strip().splitlines()[-1]
    server = Server(env=floor_env, workers=workers, app="floor.wsgi", chdir=FLOOR_DIR, ready_path="/floor/ready/")
    server.start(token)
    return server, token


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def pooled_single(runs: list[SingleRun]) -> dict[str, Any]:
    """The figures of several single phases taken together: latencies over all their requests, the rate over the
    sum of their walls."""
    times = [t for run in runs for t in run.times]
    wall = sum(run.wall for run in runs)
    routes: Counter[str] = Counter()
    for run in runs:
        routes.update(run.summary.get("routes", {}))
    pooled: dict[str, Any] = {**request_summary(times, wall), "clients": runs[0].summary["clients"], "runs": len(runs)}
    if routes:
        pooled["routes"] = dict(sorted(routes.items()))
    pooled["closed_by_server"] = sum(run.closed_by_server for run in runs)
    return pooled


def print_round(number: int, entry: dict[str, Any]) -> None:
    single, bulk, ratios = entry["single"], entry["bulk"], entry["ratios"]
    sp, sf, bp, bf = single["project"], single["floor"], bulk["project"], bulk["floor"]
    print(
        f"  round {number}: single {sp['requests_per_s']:.0f} / {sf['requests_per_s']:.0f} req/s = "
        f"{ratios['single_rps']:.3f}x  (p50 {sp['p50_ms']:.1f} / {sf['p50_ms']:.1f} ms, p99 {sp['p99_ms']:.1f} / "
        f"{sf['p99_ms']:.1f} ms)  bulk {bp['cases_per_s']:.0f} / {bf['cases_per_s']:.0f} cases/s = "
        f"{ratios['bulk_cases_per_s']:.3f}x   [project / floor]",
        flush=True,
    )


@dataclass
class Rounds:
    """The alternated rounds: per round the figures of both and their ratios; the project's phases kept whole for
    the absolute budgets; the last round's bulk batches for the in-process phases."""

    project_cases_before: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    project_single: list[SingleRun] = field(default_factory=list)
    floor_single: list[SingleRun] = field(default_factory=list)
    project_bulk_times: list[float] = field(default_factory=list)
    floor_bulk_times: list[float] = field(default_factory=list)
    last_batches: list[list[dict[str, Any]]] = field(default_factory=list)


def run_rounds(
    project: Target, floor: Target, rng: random.Random, *, rounds: int, requests: int, batches: int, clients: int
) -> Rounds:
    """Round after round, the same payloads to the project and to the floor (the first one swapping every round):
    N single requests each, then M bulk batches each (fresh external ids every round; each has its own database, so
    the same ids do not collide)."""
    result = Rounds(project_cases_before=cases_in_table())
    for number in range(1, rounds + 1):
        bodies = single_bodies(rng, f"r{number}-single", requests)
        bulk_batches = batches_of(rng, f"r{number}-bulk", batches)
        bulk_bodies = [json.dumps({"cases": batch}).encode() for batch in bulk_batches]
        before = cases_in_table()
        print(f"Round {number}/{rounds}: {requests} single requests, then {batches} bulk batches, each ...", flush=True)
        # Who goes first swaps every round, so neither side always meets a warmer cache or a busier disk.
        if number % 2:
            p_single = run_single(project, bodies, clients=clients, quiet=False)
            f_single = run_single(floor, bodies, clients=clients, quiet=True)
            p_bulk, p_times = run_bulk(project, bulk_bodies, quiet=True)
            f_bulk, f_times = run_bulk(floor, bulk_bodies, quiet=True)
        else:
            f_single = run_single(floor, bodies, clients=clients, quiet=True)
            p_single = run_single(project, bodies, clients=clients, quiet=False)
            f_bulk, f_times = run_bulk(floor, bulk_bodies, quiet=True)
            p_bulk, p_times = run_bulk(project, bulk_bodies, quiet=True)
        entry = {
            "round": number,
            "project_cases_in_table_before": before,
            "single": {"project": p_single.summary, "floor": f_single.summary},
            "bulk": {"project": p_bulk, "floor": f_bulk},
            "ratios": {
                "single_rps": ratio(p_single.summary["requests_per_s"], f_single.summary["requests_per_s"]),
                "single_p50_slower": ratio(p_single.summary["p50_ms"], f_single.summary["p50_ms"]),
                "single_p99_slower": ratio(p_single.summary["p99_ms"], f_single.summary["p99_ms"]),
                "bulk_cases_per_s": ratio(p_bulk["cases_per_s"], f_bulk["cases_per_s"]),
            },
        }
        print_round(number, entry)
        result.entries.append(entry)
        result.project_single.append(p_single)
        result.floor_single.append(f_single)
        result.project_bulk_times.extend(p_times)
        result.floor_bulk_times.extend(f_times)
        result.last_batches = bulk_batches
    return result


def versus_floor(rounds: Rounds) -> dict[str, Any]:
    """The JSON of the rounds: each round, the medians of the ratios, and the floor's own figures pooled."""
    medians = {
        name: round(statistics.median(entry["ratios"][name] for entry in rounds.entries), 3)
        for name in rounds.entries[0]["ratios"]
    }
    return {
        "rounds": rounds.entries,
        "median_ratios": medians,
        "floor_single": pooled_single(rounds.floor_single),
        "floor_bulk": rate_summary(rounds.floor_bulk_times),
    }


def run_scaling(
    targets: list[tuple[Target, Target]], rng: random.Random, *, rounds: int, requests: int, clients: int
) -> dict[str, Any]:
    """Single intake from `clients` concurrent connections to 1 gunicorn worker, then to 2, alternated, for the
    project and for the floor (what the machine itself allows: on 2 cores the client and PostgreSQL share them)."""
    out: dict[str, Any] = {"clients": clients, "requests": requests}
    for number in range(1, rounds + 1):
        cases = [case_body(rng, "") for _ in range(requests)]
        for one, two in targets:
            rates = []
            for target, tag in ((one, "w1"), (two, "w2")):
                # The same payloads with fresh ids: the 1- and 2-worker servers of a target share its database.
                bodies = [
                    json.dumps({**case, "external_id": f"scale{number}-{tag}-{i:07d}"}).encode()
                    for i, case in enumerate(cases)
                ]
                rates.append(run_single(target, bodies, clients=clients, quiet=True).summary["requests_per_s"])
            entry = out.setdefault(one.name, {"rounds": []})
            entry["rounds"].append(
                {"one_worker_rps": rates[0], "two_workers_rps": rates[1], "ratio": ratio(rates[1], rates[0])}
            )
            print(
                f"  scaling round {number} ({one.name}): 1 worker {rates[0]:.0f} req/s, 2 workers {rates[1]:.0f} req/s"
                f" = {rates[1] / rates[0]:.2f}x",
                flush=True,
            )
    for one, _ in targets:
        entry = out[one.name]
        entry["median_ratio"] = round(statistics.median(r["ratio"] for r in entry["rounds"]), 3)
    return out


# --- Where the time goes: SQL queries and cProfile ------------------------------------------------------------


def timed_with_sql(work: Callable[[], object]) -> dict[str, float]:
    """Wall time of `work` in this process and the part of it spent executing SQL statements."""
    with logged_queries() as log:
        start = time.perf_counter()
        work()
        total = time.perf_counter() - start
    return {"total_ms": round(total * 1000, 2), "sql_ms": round(log.seconds * 1000, 2), "statements": len(log.entries)}


def time_split(post: Callable[[str, dict[str, Any], int], None], singles: list[dict[str, Any]]) -> dict[str, Any]:
    """Per single intake in this process (no HTTP): median total time and median time executing SQL."""
    totals: list[float] = []
    sql: list[float] = []
    for body in singles:
        split = timed_with_sql(functools.partial(post, "/api/v1/cases/", body, 201))
        totals.append(split["total_ms"])
        sql.append(split["sql_ms"])
    totals.sort()
    sql.sort()
    return {
        "single_api_inprocess": {
            "requests": len(singles),
            "total_ms_p50": round(percentile(totals, 50), 2),
            "total_ms_p99": round(percentile(totals, 99), 2),
            "sql_ms_p50": round(percentile(sql, 50), 2),
        }
    }


def run_diagnostics(fixture: Fixture, rng: random.Random, *, profile: bool) -> dict[str, Any]:
    """In this process, after the timed phases (so on the table they filled), on fresh external ids:

    - queries: the SQL statements of one single intake, one bulk request and one submit_cases batch, by shape;
    - in_process: time per single intake (200, no HTTP), per bulk request and per submit_cases batch, and the part
      of it spent executing SQL;
    - with profile=True, printed: every statement shape and a cProfile (run apart, so the statement timing does not
      distort it) of 200 single intakes, one bulk request and one submit_cases batch.
    """
    from django.contrib.auth.models import User
    from django.test import Client as DjangoClient

    from cases.services.intake import submit_cases
    from governance.models import Category

    client = DjangoClient(HTTP_AUTHORIZATION=f"Token {fixture.token}", HTTP_HOST="127.0.0.1")
    category = Category.objects.get(pk=fixture.category_id)
    user = User.objects.get(pk=fixture.user_id)

    def post(path: str, data: dict[str, Any], expected: int) -> None:
        response = client.post(path, data, content_type="application/json")
        if response.status_code != expected:
            raise BenchError(f"In-process POST {path} answered {response.status_code}: {response.content[:300]!r}")

    def bulk_body(prefix: str) -> dict[str, Any]:
        return {"cases": [case_body(rng, f"{prefix}-{i:04d}") for i in range(BULK_BATCH)]}

    def service_items(prefix: str) -> list[IntakeItem]:
        return [intake_item(case_body(rng, f"{prefix}-{i:04d}"), category) for i in range(BULK_BATCH)]

    # A few unmeasured requests first, so one-off lookups (content types, caches) are not counted.
    for i in range(3):
        post("/api/v1/cases/", case_body(rng, f"diag-warm-{i}"), 201)
    from cases.models import Case

    report: dict[str, Any] = {}
    with logged_queries() as log:
        post("/api/v1/cases/", case_body(rng, "diag-single"), 201)
    report["single_api"] = log.report()
    body = bulk_body("diag-bulk")
    with logged_queries() as log:
        post("/api/v1/cases/bulk/", body, 200)
    report["bulk_api_500"] = log.report()
    items = service_items("diag-svc")
    with logged_queries() as log:
        submit_cases(user=user, items=items)
    report["submit_cases_500"] = log.report()

    split: dict[str, Any] = {"cases_in_table": Case.objects.count()}
    split.update(time_split(post, singles=[case_body(rng, f"split-{i:04d}") for i in range(200)]))
    split["bulk_api_500"] = timed_with_sql(lambda: post("/api/v1/cases/bulk/", bulk_body("split-bulk"), 200))
    items = service_items("split-svc")
    split["submit_cases_500"] = timed_with_sql(lambda: submit_cases(user=user, items=items))

    if profile:
        for name, data in report.items():
            print(f"\n--- SQL of {name}: {data['statements']} statements, {data['sql_ms']:.1f} ms executing them ---")
            for group in data["by_shape"]:
                print(f"  {group['count']:5d} x  {group['ms']:8.2f} ms  {group['sql']}")
        singles = [case_body(rng, f"prof-single-{i:04d}") for i in range(200)]
        body, items = bulk_body("prof-bulk"), service_items("prof-svc")

        def post_singles() -> None:
            for single in singles:
                post("/api/v1/cases/", single, 201)

        runs: list[tuple[str, Callable[[], object]]] = [
            ("200 single POST /api/v1/cases/ (in-process, test client)", post_singles),
            (
                "one POST /api/v1/cases/bulk/ of 500 (in-process, test client)",
                lambda: post("/api/v1/cases/bulk/", body, 200),
            ),
            ("one submit_cases of 500 (in-process)", lambda: submit_cases(user=user, items=items)),
        ]
        for title, work in runs:
            profiler = cProfile.Profile()
            profiler.runcall(work)
            print(f"\n--- cProfile: {title} ---")
            print(profile_text(profiler, "cumulative", 45))
            print(profile_text(profiler, "tottime", 15))
    # The JSON keeps only the biggest groups.
    for data in report.values():
        data["by_shape"] = data["by_shape"][:6]
    return {"queries": report, "in_process": split}


# --- Report ---------------------------------------------------------------------------------------------------


def floor_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    versus = results["versus_floor"]
    medians, rounds = versus["median_ratios"], len(versus["rounds"])
    floor_single, floor_bulk = versus["floor_single"], versus["floor_bulk"]
    rows = [
        row(
            f"single intake / floor, req/s (median of {rounds} rounds)",
            f"{medians['single_rps']:.3f}x",
            f">= {TARGET_SINGLE_RATIO:g}x",
            verdict(medians["single_rps"] >= TARGET_SINGLE_RATIO),
        ),
        row("single intake p50 / floor p50 (x slower)", f"{medians['single_p50_slower']:.2f}x"),
        row("single intake p99 / floor p99 (x slower)", f"{medians['single_p99_slower']:.2f}x"),
        row(
            f"bulk intake / floor bulk, cases/s (median of {rounds} rounds)",
            f"{medians['bulk_cases_per_s']:.3f}x",
            f">= {TARGET_BULK_FLOOR_RATIO:g}x",
            verdict(medians["bulk_cases_per_s"] >= TARGET_BULK_FLOOR_RATIO),
        ),
        row(
            "floor: single req/s, p50 / p99",
            f"{floor_single['requests_per_s']:.1f} req/s, "
            f"{floor_single['p50_ms']:.2f} / {floor_single['p99_ms']:.2f} ms",
        ),
        row("floor: bulk (500 per request)", f"{floor_bulk['cases_per_s']:.0f} cases/s"),
    ]
    scaling = results.get("scaling")
    if scaling:
        for name in ("project", "floor"):
            target = f"> {TARGET_SCALING:g}x" if name == "project" else ""
            median = scaling[name]["median_ratio"]
            rows.append(
                row(
                    f"{name}: 2 workers / 1 worker, req/s ({scaling['clients']} clients, median)",
                    f"{median:.2f}x",
                    target,
                    verdict(median > TARGET_SCALING) if target else "",
                )
            )
    return rows


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    single, unauthenticated = results["single"], results["floor_401"]
    api, svc, orm = results["bulk_api"], results["submit_cases"], results["bulk_create"]
    orm_ratio = results["ratios"]["bulk_api_over_bulk_create"]
    rows_orm = results["bulk_create_same_rows"]
    same_rows_ratio = results["ratios"]["bulk_api_over_bulk_create_same_rows"]
    rows = [
        row(
            "single intake p50 (client RTT)",
            f"{single['p50_ms']:.2f} ms",
            f"< {TARGET_P50_MS:g} ms",
            verdict(single["p50_ms"] < TARGET_P50_MS),
        ),
        row("single intake p90 (client RTT)", f"{single['p90_ms']:.2f} ms"),
        row(
            "single intake p99 (client RTT)",
            f"{single['p99_ms']:.2f} ms",
            f"< {TARGET_P99_MS:g} ms",
            verdict(single["p99_ms"] < TARGET_P99_MS),
        ),
        row("single intake max (client RTT)", f"{single['max_ms']:.2f} ms"),
        row("single intake throughput", f"{single['requests_per_s']:.1f} req/s"),
        *floor_rows(results),
        row(
            "401 without DB, p50 / p99",
            f"{unauthenticated['p50_ms']:.2f} / {unauthenticated['p99_ms']:.2f} ms",
        ),
        row("bulk API (500 per request)", f"{api['cases_per_s']:.0f} cases/s"),
        row("submit_cases in-process (500 per call)", f"{svc['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create (500 per call)", f"{orm['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create of the same rows (case+history+audit)", f"{rows_orm['cases_per_s']:.0f} cases/s"),
        # The budget's peer is the floor (above); these two say how far the API is from the ORM alone.
        row("bulk API / bulk_create of the same rows", f"{same_rows_ratio:.3f}"),
        row("bulk API / bulk_create of the case rows only", f"{orm_ratio:.3f}"),
        row("submit_cases / bulk_create", f"{results['ratios']['submit_cases_over_bulk_create']:.3f}"),
    ]
    rows.extend(
        row(f"SQL statements (+ BEGIN/COMMIT): {name}", str(results["queries"][name]["statements"]))
        for name in QUERY_RUNS
    )
    split = results["in_process"]
    single_split = split["single_api_inprocess"]
    rows.append(
        row(
            f"single intake in-process p50 ({split['cases_in_table']} cases): total / SQL",
            f"{single_split['total_ms_p50']:.2f} / {single_split['sql_ms_p50']:.2f} ms",
        )
    )
    rows.extend(
        row(f"{name} in-process: total / SQL", f"{split[name]['total_ms']:.0f} / {split[name]['sql_ms']:.0f} ms")
        for name in ("bulk_api_500", "submit_cases_500")
    )
    return rows


def print_table(results: dict[str, Any], rows: list[dict[str, str]]) -> None:
    single = results["single"]
    print_rows(rows)
    print(
        "\nLatencies are client round trips on loopback (request sent -> last byte read): an upper bound of\n"
        f"server-side time. gunicorn's sync worker closed the connection after {single['closed_by_server']} of "
        f"{single['count']} responses,\nso each of those requests also paid a loopback TCP connect. The project's "
        "single-intake figures are\nall its rounds together; the ratios are per round (project and floor on the same "
        "payloads), then their median."
    )


# --- Main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--requests", type=int, default=2000, help="timed single-case requests per round and target (default 2000)"
    )
    parser.add_argument(
        "--bulk-batches", type=int, default=10, help="bulk batches of 500 per round and target (default 10)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds, project then floor (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers of each server (default 1)")
    parser.add_argument(
        "--clients",
        type=int,
        default=1,
        help="concurrent connections of the single-case phase (default 1, sequential; more to load several workers)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also measure single intake with 2 workers against 1 (project and floor), from --scaling-clients "
        "connections, --rounds times alternated",
    )
    parser.add_argument(
        "--scaling-clients", type=int, default=4, help="concurrent connections of the scaling phase (default 4)"
    )
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite (not what the budgets are for)")
    parser.add_argument("--profile", action="store_true", help="print cProfile output and every SQL query shape")
    add_run_options(
        parser,
        db_name="hitl_bench",
        db_help="the scratch database (default hitl_bench); the floor's is <db-name>_floor",
        results="intake-<date>.json",
    )
    args = parser.parse_args(argv)
    if min(args.requests, args.bulk_batches, args.rounds, args.workers, args.clients, args.scaling_clients) < 1:
        parser.error("--requests, --bulk-batches, --rounds, --workers and the clients must be at least 1")
    if args.scaling and args.workers != 1:
        parser.error("--scaling compares 2 workers with 1: leave --workers at 1")
    return args


def gunicorn_command(server: Server) -> str:
    """The server's command line as run from the project root, without this run's port."""
    command = " ".join(["gunicorn", *server.command[1:]]).replace(str(server.port), "<port>")
    return command.replace(str(ROOT) + os.sep, "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    database, floor_database = scratch_databases(
        [args.db_name, f"{args.db_name}_floor"], replace=args.replace_db, allow_sqlite=args.allow_sqlite
    )
    servers: list[Server] = []
    load_at_start = os.getloadavg()[0]
    try:
        database.create()
        floor_database.create()
        print(f"Scratch databases {database.name!r} and {floor_database.name!r} created; migrating ...", flush=True)
        # Production's throttles run in both servers, at a rate no run reaches (a burst of rounds would pass
        # 6000/minute), over a window of one second so the history each request reads and writes stays short.
        os.environ["HITL_THROTTLE_USER"] = THROTTLE_RATE
        env = configure_django(database.url)
        migrate_seconds = migrate()
        fixture = create_fixture()
        server = Server(env=env, workers=args.workers)
        servers.append(server)
        server.start(fixture.token)
        floor_server, floor_token = start_floor(floor_database, env, workers=args.workers)
        servers.append(floor_server)
        print(
            f"gunicorn up: project on 127.0.0.1:{server.port}, floor on 127.0.0.1:{floor_server.port} "
            f"({args.workers} worker(s) each; project migrations took {migrate_seconds:.1f} s)",
            flush=True,
        )
        project, floor = project_target(server.port, fixture.token), floor_target(floor_server.port, floor_token)
        rng = random.Random(args.seed)

        print(f"Warm-up: {WARMUP_REQUESTS} single requests and one bulk batch to each ...", flush=True)
        warm_bodies = single_bodies(rng, "warm", WARMUP_REQUESTS)
        warm_bulk = [json.dumps({"cases": batch}).encode() for batch in batches_of(rng, "warm-bulk", 1)]
        for target in (project, floor):
            run_single(target, warm_bodies, clients=args.clients, quiet=True)
            run_bulk(target, warm_bulk, quiet=True)

        rounds = run_rounds(
            project,
            floor,
            rng,
            rounds=args.rounds,
            requests=args.requests,
            batches=args.bulk_batches,
            clients=args.clients,
        )
        single = pooled_single(rounds.project_single)
        unauthenticated = run_unauthenticated(server.port)
        bulk_api = {
            **rate_summary(rounds.project_bulk_times),
            "cases_in_table_before": rounds.project_cases_before,
            "request_body_kib": rounds.entries[0]["bulk"]["project"]["request_body_kib"],
        }

        scaling: dict[str, Any] | None = None
        if args.scaling:
            print(f"Scaling: 2 workers against 1, {args.scaling_clients} concurrent clients ...", flush=True)
            two = Server(env=env, workers=2)
            servers.append(two)
            two.start(fixture.token)
            floor_two = Server(
                env=floor_server.env, workers=2, app="floor.wsgi", chdir=FLOOR_DIR, ready_path="/floor/ready/"
            )
            servers.append(floor_two)
            floor_two.start(floor_token)
            scaling = run_scaling(
                [
                    (project, project_target(two.port, fixture.token)),
                    (floor, floor_target(floor_two.port, floor_token)),
                ],
                rng,
                rounds=args.rounds,
                requests=args.requests,
                clients=args.scaling_clients,
            )

        print("In-process bulk phases on the last round's rows ...", flush=True)

        def same_rows(prefix: str) -> list[list[dict[str, Any]]]:
            return [
                [{**body, "external_id": f"{prefix}-{body['external_id']}"} for body in batch]
                for batch in rounds.last_batches
            ]

        service = run_submit_cases(fixture, same_rows("svc"), quiet=False)
        orm = run_bulk_create(fixture, same_rows("orm"), quiet=False)
        orm_rows = run_bulk_create(fixture, same_rows("rows"), quiet=False, with_history_and_audit=True)

        print("Counting SQL queries (in-process) ...", flush=True)
        diagnostics = run_diagnostics(fixture, rng, profile=args.profile)

        results: dict[str, Any] = {
            **run_record(
                "intake",
                database,
                load_at_start,
                database_options=urlsplit(database.base_url).query,
                server=gunicorn_command(server),
                floor_server=gunicorn_command(floor_server),
                client=f"http.client, {args.clients} keep-alive connection(s), sequential on each",
                throttle_user=THROTTLE_RATE,
            ),
            "parameters": {
                "requests": args.requests,
                "warmup": WARMUP_REQUESTS,
                "bulk_batches": args.bulk_batches,
                "batch_size": BULK_BATCH,
                "rounds": args.rounds,
                "workers": args.workers,
                "clients": args.clients,
                "seed": args.seed,
            },
            "measurement": "client round trip on loopback; an upper bound of server-side time",
            "single": single,
            "floor_401": unauthenticated,
            "bulk_api": bulk_api,
            "versus_floor": versus_floor(rounds),
            **({"scaling": scaling} if scaling else {}),
            "submit_cases": service,
            "bulk_create": orm,
            "bulk_create_same_rows": orm_rows,
            "ratios": {
                "bulk_api_over_bulk_create_same_rows": round(bulk_api["cases_per_s"] / orm_rows["cases_per_s"], 3),
                "bulk_api_over_bulk_create": round(bulk_api["cases_per_s"] / orm["cases_per_s"], 3),
                "submit_cases_over_bulk_create": round(service["cases_per_s"] / orm["cases_per_s"], 3),
                "bulk_api_over_submit_cases": round(bulk_api["cases_per_s"] / service["cases_per_s"], 3),
            },
            **diagnostics,
        }
        rows = table_rows(results)
        print_table(results, rows)
        save_results("intake", results, rows, write=not args.no_write)
        return results
    finally:
        for running in reversed(servers):
            running.stop()
        release([database, floor_database], keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "intake",
        lambda: run(args),
        interrupted="Interrupted; gunicorn was stopped (and the scratch databases dropped unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
