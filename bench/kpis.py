"""Metrics benchmark: every KPI of a category over a 30-day window, the metrics API and the dashboard page, with
1,000,000 decisions in the database. (Named kpis.py, not metrics.py: a top-level `metrics` module would shadow
the app package for mypy and for anything that puts bench/ on the path.)

Against DESIGN.md "Budgets": "metrics of a 30-day window over 1,000,000 decisions under 1 s; the dashboard page
under 1 s p95 at that size"; and issue 9: the dashboard's query count at 10,000 and at 1,000,000 (the same).

For each size in ``--sizes`` (decisions; default 10,000 then 1,000,000) it creates a scratch PostgreSQL database
(``<db-name>_<size>``), migrates it, measures, and drops it before the next size:

1. Data. One category (``create_bench_category``: exception pattern, live, its five default queues, an active
   model version; fraud_suspected and chargeback_history sensitive), 12 reviewers (role Reviewer, working its
   quick, full and audit queues), 2 escalation managers (its escalation and expert queues) and a product owner
   (``governance.change_category`` on it, an API token: they see every reviewer's row). Then cases and decisions
   generated in SQL (``INSERT ... SELECT generate_series``, in chunks, with progress lines), not through intake,
   over ``--days`` (35) days ending now, in id order. What each case is comes from a permutation of the ids
   sliced by the shares of ``ROUTE_MIX``, so the number of decisions is known in advance: the size is the
   decision count (to one), and the cases are about 1.35 times it. Routes: auto 30 % (8 % of those audited:
   confirmed 95 %, flagged 5 %; a few audits pending), quick review 44 %, full review 23 % (a sensitive label or
   rule, or a low confidence), shadow 3 %. Human verdicts approve, correct, reject; 3-6 % escalated to the
   escalation or expert queue and decided there (two decisions; some breach the escalation SLA there); 2 % breach
   their first queue's SLA and move to escalation (a breach row, urgent) to be decided there; about 1 % wait
   now, recent and within their SLA (5 % of them claimed). Seconds spent per decision from a skewed
   distribution (none for batch approvals, which carry a batch id), segments {channel, tier}, values, rules
   fired, confidences by route. The rows satisfy the models' constraints (confidence in [0, 1], reason codes
   where required, one breach per case and due time), and the append-only decisions are only inserted. No
   history rows or audit events: the KPIs read neither (bench/review.py and bench/sweep.py generate them). Then
   VACUUM ANALYZE (the steady state autovacuum keeps), and ``--extra-sql`` (e.g. a CREATE INDEX to try).
   Then every past hour's snapshot (``snapshot_metrics`` over all ``--days``, as the hourly job leaves them on a
   site that ran it all along; timed), which the KPIs of a long window sum; ``--no-snapshots`` skips it, to
   measure the live reading of every figure.
2. KPIs in this process: ``metrics.kpis.category_kpis(category, Window.last("30d"))`` once to warm up, then
   ``--runs`` times (default 5) over the same window: the median wall time, its SQL statements (an execute
   wrapper) and the time in them; each piece of the module (``case_counts``, ``decision_counts``, ...) timed
   alone the same way, so every statement has a name; and EXPLAIN (ANALYZE, BUFFERS) of the ``--explain-top``
   slowest statements (printed with ``--explain``, or when one takes more than 300 ms or a target is missed).
3. The API: ``GET /api/v1/metrics/<slug>/?window=30d`` through gunicorn (``--workers`` sync workers, default 1;
   one keep-alive http.client connection; the product owner's token): ``--warmup`` requests, then
   ``--requests`` (30) timed, p50/p95/max of the client round trip (an upper bound of server time). Its SQL
   statements are counted in this process with Django's test client (gunicorn is not instrumented).
4. The dashboard page ``/admin/metrics/dashboard/?category=<slug>&window=30d`` the same way, logged in as the
   product owner (a session made in this process, its cookie sent to gunicorn), once it exists: a 404 skips it
   with a message (the page not merged yet), so the script can be re-run as it is after the merge. Any other
   answer than 200 is a MISS.
5. Query counts at each size (category_kpis, the API, the dashboard): they must not grow with the data.

A series of runs or requests stops early once it has taken ``--time-box`` seconds (90; at least 3 runs or 5
requests), so that a size far over its budget still ends in reasonable time; the table says how many were made.
For diagnosis: ``--extra-sql`` (an index to try), ``--db-setting NAME=VALUE`` (``ALTER DATABASE <scratch> SET``,
so this process's new connections and gunicorn's start with it: ``jit=off``, ``work_mem=64MB``...), ``--explain``,
and ``--keep-db`` to try more by hand.

Run (PostgreSQL, trust auth; the database named in the URL is not used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/kpis.py
    DATABASE_URL=... .venv/bin/python bench/kpis.py --sizes 10000 --explain
    DATABASE_URL=... .venv/bin/python bench/kpis.py --sizes 1000000 --tag idx --extra-sql "CREATE INDEX ..."
    DATABASE_URL=... .venv/bin/python bench/kpis.py --sizes 1000000 --tag no-jit --db-setting jit=off

Results: a table on stdout and ``bench/results/kpis-<date>.json`` (``kpis-<tag>-<date>.json`` with ``--tag``).
The scratch databases are dropped at the end (also on Ctrl-C) unless ``--keep-db``; an existing one is refused
unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import timedelta
from typing import Any

from common import (
    ScratchDatabase,
    add_diagnosis_options,
    add_run_options,
    bench_parser,
    configure_django,
    migrate,
    print_rows,
    release,
    run_main,
    run_record,
    save_results,
    scratch_databases,
    server_settings,
    sizes_parser,
    use_database,
)
from common_data import size_label
from common_server import Server
from kpis_category_kpis import backfill_snapshots, measure_kpis
from kpis_data import generate
from kpis_fixture import ROUTE_MIX, Plan, create_fixture
from kpis_pages import PAGE_TIMEOUT_SECONDS, measure_pages
from kpis_report import print_details, table_rows

WINDOW = "30d"
API_URL = "/api/v1/metrics/{slug}/?window={window}"
DASHBOARD_URL = "/admin/metrics/dashboard/?category={slug}&window={window}"

SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "jit",
    "jit_above_cost",
    "max_parallel_workers_per_gather",
)


# --- One size -------------------------------------------------------------------------------------------------


def run_size(
    decisions: int, database: ScratchDatabase, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    from django.db.models import Count, Q
    from django.utils import timezone

    from reviews.models import Decision

    plan = Plan.for_decisions(decisions)
    database.create()
    print(f"\n=== {decisions:,} decisions: scratch database {database.name!r} created; migrating ...", flush=True)
    use_database(database.name)
    migrate_seconds = migrate()
    fx = create_fixture()
    anchor = timezone.now()
    print(
        f"  migrated in {migrate_seconds:.1f} s; generating {plan.cases:,} cases carrying {plan.decisions:,} "
        f"decisions over {args.days} days ...",
        flush=True,
    )
    generation = generate(fx, plan, anchor, args)
    snapshots = backfill_snapshots(args) if args.snapshots else None
    since = timezone.now() - timedelta(days=30)
    in_window = Decision.objects.aggregate(n=Count("id", filter=Q(created_at__gte=since)))["n"]
    kpis = measure_kpis(fx, args)
    # A statement running past gunicorn's timeout is cancelled, not left working after its worker was killed.
    timeout = f"-c statement_timeout={PAGE_TIMEOUT_SECONDS}s"
    server = Server(env={**env, "DATABASE_URL": database.url, "PGOPTIONS": timeout}, workers=args.workers)
    try:
        server.start(fx.token)
        print(f"gunicorn ({args.workers} sync worker(s)) up on 127.0.0.1:{server.port}", flush=True)
        pages = measure_pages(fx, server, args)
    finally:
        server.stop()
    return {
        "decisions": plan.decisions,
        "decisions_in_window": in_window,
        "cases": plan.cases,
        "database": database.name,
        "anchor": anchor.isoformat(),
        "migrate_seconds": round(migrate_seconds, 1),
        "generation": generation,
        "snapshots": snapshots,
        "server": " ".join(["gunicorn", *server.command[1:]]).replace(str(server.port), "<port>"),
        "kpis": kpis,
        **pages,
    }


# --- Main -----------------------------------------------------------------------------------------------------


# The --sizes option: comma-separated counts.
parse_sizes = sizes_parser(minimum=1000, what="decision counts of at least 1000")


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z_][a-z0-9_.]*", name.strip()) or not value.strip():
        raise argparse.ArgumentTypeError(f"--db-setting: NAME=VALUE, e.g. jit=off (got {text!r})")
    return name.strip(), value.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    windows = ("1h", "24h", "7d", "30d", "90d")  # metrics.kpis.WINDOWS (Django is not set up yet)
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[10_000, 1_000_000],
        help="decisions; default 10000,1000000",
    )
    parser.add_argument("--days", type=int, default=35, help="days the data spans, up to now (default 35)")
    parser.add_argument("--window", choices=windows, default=WINDOW, help=f"the KPI window (default {WINDOW})")
    parser.add_argument("--runs", type=int, default=5, help="timed category_kpis runs after the warm-up (default 5)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per page first (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn sync workers (default 1)")
    parser.add_argument("--explain-top", type=int, default=4, help="slowest statements explained (default 4)")
    parser.add_argument(
        "--time-box",
        type=float,
        default=90.0,
        help="seconds after which a series of runs or requests stops early (at least 3 runs, 5 requests; default 90)",
    )
    parser.add_argument(
        "--db-setting",
        type=parse_setting,
        action="append",
        default=[],
        help="NAME=VALUE set on the scratch database before measuring (e.g. jit=off, work_mem=64MB); repeatable",
    )
    parser.add_argument("--api-url", default=API_URL, help=f"the API path ({{slug}}, {{window}}; default {API_URL})")
    parser.add_argument(
        "--dashboard-url",
        default=DASHBOARD_URL,
        help=f"the dashboard path ({{slug}}, {{window}}; default {DASHBOARD_URL})",
    )
    parser.add_argument(
        "--no-snapshots",
        dest="snapshots",
        action="store_false",
        help="measure without the hourly snapshots (every figure read live from the cases and decisions)",
    )
    add_diagnosis_options(parser, benchmark="kpis")
    add_run_options(
        parser,
        db_name="hitl_bench_metrics",
        db_help="scratch database prefix (<name>_<size>; default hitl_bench_metrics)",
        results="kpis-<date>.json",
    )
    args = parser.parse_args(argv)
    if min(args.runs, args.requests, args.workers, args.days, args.explain_top) < 1 or args.warmup < 0:
        parser.error("--runs, --requests, --workers, --days and --explain-top must be at least 1")
    if args.days < 31:
        parser.error("--days: at least 31, so that the 30-day window is full")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    databases = scratch_databases(
        [f"{args.db_name}_{size_label(n)}" for n in args.sizes],
        replace=args.replace_db,
        postgres_only="percentiles in the database, 1M rows",
    )
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    per_size: list[dict[str, Any]] = []
    try:
        env = configure_django(databases[0].url)
        settings_seen: dict[str, str] = {}
        for n, database in zip(args.sizes, databases, strict=True):
            per_size.append(run_size(n, database, env, args))
            settings_seen = server_settings(SERVER_SETTINGS)
            if not args.keep_db:
                release([database], keep=False)  # dropped once measured: two large databases never sit side by side
        results: dict[str, Any] = {
            **run_record(
                "kpis",
                databases[0],
                load_at_start,
                server_settings=settings_seen,
                kpis="metrics.kpis.category_kpis in this process, an execute wrapper timing each statement",
                pages="gunicorn sync worker(s), one keep-alive http.client connection, sequential; SQL counted "
                "in this process with django.test.Client and CaptureQueriesContext",
            ),
            "parameters": {
                "sizes": args.sizes,
                "days": args.days,
                "window": args.window,
                "runs": args.runs,
                "requests": args.requests,
                "warmup": args.warmup,
                "workers": args.workers,
                "time_box_seconds": args.time_box,
                "extra_sql": args.extra_sql,
                "db_settings": dict(args.db_setting),
                "seed": args.seed,
                "route_mix": ROUTE_MIX,
            },
            "total_seconds": round(time.perf_counter() - started, 1),
            "sizes": per_size,
        }
        rows = table_rows(per_size)
        print_rows(rows)
        print(
            f"\nKPIs: in this process, {args.runs} runs after a warm-up, over the same window. Pages: client round "
            f"trips on loopback to gunicorn ({args.workers} sync worker(s)), an upper bound of server time; their "
            f"queries counted in this process.\n{os.cpu_count()} cores; load average at start "
            f"{load_at_start:.2f}. Total run time {results['total_seconds']:.0f} s."
        )
        missed = any(r["result"] == "MISS" for r in rows)
        print_details(per_size, explain_all=args.explain, missed=missed)
        save_results(f"kpis-{args.tag}" if args.tag else "kpis", results, rows, write=not args.no_write)
        return results
    finally:
        release(databases, keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "kpis",
        lambda: run(args),
        interrupted="Interrupted; gunicorn was stopped and the scratch databases dropped (unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
