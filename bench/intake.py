"""Intake benchmark: single-case latency and bulk rate of the REST API, against DESIGN.md "Budgets".

What it measures, on a scratch PostgreSQL database it creates (and drops at the end):

1. Single-case intake: N sequential ``POST /api/v1/cases/`` (default 2,000, after 100 uncounted warm-up
   requests) to ONE gunicorn sync worker, from one keep-alive ``http.client`` connection. The server is not
   instrumented: the figure is the client-side round trip on loopback, timed from sending the request to
   reading the last byte of the response. That is an upper bound of server-side time (it adds the loopback
   TCP hop and, since gunicorn's sync worker closes every connection, a TCP connect of ~0.1 ms). Budget:
   p50 < 15 ms and p99 < 50 ms server-side; a PASS here therefore holds server-side too.
   For scale, the same is measured for an unauthenticated POST (a 401 that touches no database): the floor
   of HTTP + gunicorn + Django middleware + DRF.
2. Bulk intake: ``POST /api/v1/cases/bulk/`` in batches of 500 (default 10 batches) -> cases/s; then, in
   this process and on the same database, ``cases.services.submit_cases`` on batches of the same rows (the
   service without HTTP, JSON and serializers) and a plain ``Case.objects.bulk_create`` of the same rows (route
   fields fixed, queue and model version set; building the objects is not timed) -> cases/s. Budget: the bulk
   API at least half the rate of ``bulk_create``. Every phase uses its own external ids.
3. Where the time goes, in this process after the timed phases (so on the table they filled): the SQL statements
   of one single intake, one bulk request and one ``submit_cases`` batch (Django's test client and an execute
   wrapper timing each statement, grouped by shape), and their time split into total and time executing SQL.
   ``--profile`` also prints every statement shape and a cProfile of 200 single intakes, one bulk request and
   one ``submit_cases`` batch.

The table grows during the run (about 17,000 cases with the defaults), and intake reads the category's recent
cases, so every phase's JSON records how many cases the table held when it started.

Run (PostgreSQL, trust auth; the database named in the URL is not used, the scratch one is ``--db-name``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/intake.py
    DATABASE_URL=... .venv/bin/python bench/intake.py --requests 500 --bulk-batches 2 --profile

Results: a table on stdout and ``bench/results/intake-<date>.json``. The script refuses SQLite unless
``--allow-sqlite`` (then the scratch database is a temporary file), refuses to use the ``test``, ``postgres``
and template databases, and refuses a scratch database that already exists unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
    RULES,
    SENSITIVE_POLICY,
    TEXTS,
    TIERS,
    BenchError,
    HttpClient,
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
FLOOR_REQUESTS = 200
PROGRESS_EVERY = 500
QUERY_RUNS = ("single_api", "bulk_api_500", "submit_cases_500")

# DESIGN.md "Budgets".
TARGET_P50_MS = 15.0
TARGET_P99_MS = 50.0
TARGET_BULK_RATIO = 0.5


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


def run_single(client: HttpClient, rng: random.Random, *, prefix: str, count: int, quiet: bool) -> dict[str, Any]:
    bodies = [json.dumps(case_body(rng, f"{prefix}-{i:07d}")).encode() for i in range(count)]
    times: list[float] = []
    routes: Counter[str] = Counter()
    start = time.perf_counter()
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post("/api/v1/cases/", body)
        if status != 201:
            raise BenchError(f"POST /api/v1/cases/ answered {status}: {data[:500]!r}")
        times.append(elapsed)
        routes[json.loads(data)["route"]] += 1
        if not quiet and i % PROGRESS_EVERY == 0:
            # The last stretch on its own too: a drift as the table grows shows here, not in the running total.
            recent, so_far = sorted(times[-PROGRESS_EVERY:]), sorted(times)
            print(
                f"  single: {i}/{count}  last {len(recent)}: p50 {percentile(recent, 50) * 1000:.1f} ms, "
                f"p99 {percentile(recent, 99) * 1000:.1f} ms  all: p50 {percentile(so_far, 50) * 1000:.1f} ms, "
                f"p99 {percentile(so_far, 99) * 1000:.1f} ms",
                flush=True,
            )
    wall = time.perf_counter() - start
    return {**request_summary(times, wall), "routes": dict(sorted(routes.items()))}


def run_floor(port: int) -> dict[str, Any]:
    """Unauthenticated POSTs (401, no database work): what HTTP, gunicorn, middleware and DRF cost alone."""
    client = HttpClient(port, token=None)
    body = json.dumps({"category": CATEGORY_SLUG}).encode()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(FLOOR_REQUESTS):
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


def run_bulk_api(client: HttpClient, batches: list[list[dict[str, Any]]], quiet: bool) -> dict[str, Any]:
    before = cases_in_table()
    bodies = [json.dumps({"cases": batch}).encode() for batch in batches]
    times: list[float] = []
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post("/api/v1/cases/bulk/", body)
        answer = json.loads(data) if status == 200 else {}
        if status != 200 or answer.get("created") != BULK_BATCH:
            raise BenchError(f"POST /api/v1/cases/bulk/ answered {status}: {data[:500]!r}")
        times.append(elapsed)
        if not quiet:
            print(
                f"  bulk API: batch {i}/{len(bodies)}  {elapsed * 1000:.0f} ms  ({len(body) // 1024} KiB)", flush=True
            )
    kib = round(sum(map(len, bodies)) / len(bodies) / 1024, 1)
    return {**rate_summary(times), "cases_in_table_before": before, "request_body_kib": kib}


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


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    single, floor = results["single"], results["floor_401"]
    api, svc, orm = results["bulk_api"], results["submit_cases"], results["bulk_create"]
    ratio = results["ratios"]["bulk_api_over_bulk_create"]
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
        row("floor: 401 without DB, p50 / p99", f"{floor['p50_ms']:.2f} / {floor['p99_ms']:.2f} ms"),
        row("bulk API (500 per request)", f"{api['cases_per_s']:.0f} cases/s"),
        row("submit_cases in-process (500 per call)", f"{svc['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create (500 per call)", f"{orm['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create of the same rows (case+history+audit)", f"{rows_orm['cases_per_s']:.0f} cases/s"),
        row(
            "bulk API / bulk_create of the same rows",
            f"{same_rows_ratio:.3f}",
            f">= {TARGET_BULK_RATIO:g}",
            verdict(same_rows_ratio >= TARGET_BULK_RATIO),
        ),
        row("bulk API / bulk_create of the case rows only", f"{ratio:.3f}"),
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
        f"{single['count']} responses,\nso each of those requests also paid a loopback TCP connect."
    )


# --- Main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed single-case requests (default 2000)")
    parser.add_argument("--bulk-batches", type=int, default=10, help="bulk batches of 500 per phase (default 10)")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite (not what the budgets are for)")
    parser.add_argument("--profile", action="store_true", help="print cProfile output and every SQL query shape")
    add_run_options(
        parser, db_name="hitl_bench", db_help="the scratch database (default hitl_bench)", results="intake-<date>.json"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.bulk_batches < 1:
        parser.error("--requests and --bulk-batches must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    (database,) = scratch_databases([args.db_name], replace=args.replace_db, allow_sqlite=args.allow_sqlite)
    server: Server | None = None
    load_at_start = os.getloadavg()[0]
    try:
        database.create()
        print(f"Scratch database {database.name!r} created; migrating ...", flush=True)
        env = configure_django(database.url)
        migrate_seconds = migrate()
        fixture = create_fixture()
        server = Server(env=env)
        server.start(fixture.token)
        print(f"gunicorn up on 127.0.0.1:{server.port} (migrations took {migrate_seconds:.1f} s)", flush=True)
        rng = random.Random(args.seed)

        client = HttpClient(server.port, fixture.token)
        print(f"Single-case intake: {WARMUP_REQUESTS} warm-up requests, then {args.requests} timed ...", flush=True)
        run_single(client, rng, prefix="warm", count=WARMUP_REQUESTS, quiet=True)
        client.closed_by_server = 0
        single = run_single(client, rng, prefix="single", count=args.requests, quiet=False)
        single["closed_by_server"] = client.closed_by_server
        floor = run_floor(server.port)

        print(f"Bulk intake: {args.bulk_batches} batches of {BULK_BATCH} per phase ...", flush=True)
        api_batches = batches_of(rng, "bulk", args.bulk_batches)
        bulk_api = run_bulk_api(client, api_batches, quiet=False)
        client.close()

        def same_rows(prefix: str) -> list[list[dict[str, Any]]]:
            return [[{**body, "external_id": f"{prefix}-{body['external_id']}"} for body in b] for b in api_batches]

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
                server=" ".join(["gunicorn", *server.command[1:]]).replace(str(server.port), "<port>"),
                client="http.client, one keep-alive connection, sequential",
            ),
            "parameters": {
                "requests": args.requests,
                "warmup": WARMUP_REQUESTS,
                "bulk_batches": args.bulk_batches,
                "batch_size": BULK_BATCH,
                "seed": args.seed,
            },
            "measurement": "client round trip on loopback; an upper bound of server-side time",
            "single": single,
            "floor_401": floor,
            "bulk_api": bulk_api,
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
        if server is not None:
            server.stop()
        release([database], keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "intake",
        lambda: run(args),
        interrupted="Interrupted; gunicorn was stopped (and the scratch database dropped unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
