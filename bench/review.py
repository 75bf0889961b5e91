"""Review benchmark: the reviewer's queue page and review page in the admin, and claim-next under contention.

Against DESIGN.md "Budgets": "a reviewer's queue page and a review page in the admin take a number of SQL queries
that does not grow with the data, and render under 300 ms p95 with 1,000,000 cases in the database; claim-next
under 30 ms p99 with 20 reviewers at once and never a double claim".

For each size in ``--sizes`` (default 10,000 then 1,000,000) it creates a scratch PostgreSQL database
(``<db-name>_<size>``), migrates it, and measures:

1. Data. One category (``governance.services.create_category``, its five default queues, an active model version),
   reviewers, and N cases generated in SQL (``INSERT ... SELECT generate_series``, in chunks, with progress lines),
   not through intake, which would take hours at 1M. Distributions are production-like: ~68 % auto-approved
   (5 % of those audited), the rest quick/full/shadow reviews decided by people (approved, corrected, rejected;
   some through the escalation or expert queue), spread over 180 days; plus a backlog whose size depends little
   on N: ``max(2500, N/200)`` waiting in the quick queue (a few held by other reviewers, a few with an expired
   claim), ``max(1000, N/500)`` in the full queue, and some in the escalation, expert and audit queues, with due
   times around their SLA (some overdue), 5 % urgent, skewed customer refs (a few customers with thousands of
   cases), labels, values, segments and rules. Each case also gets what intake and decisions would have written:
   its history rows, its audit events (a hash chain not recomputed: the scratch database is dropped), and one
   Decision per human action (escalate, approve/correct/reject, confirm/flag). Then ANALYZE.
2. Pages, in this process with Django's test client (no HTTP), logged in (``force_login``) as a staff reviewer
   (role group "Reviewer") who has ``cases.work_queue`` on the quick queue only (guardian ``assign_perm``):
   ``--requests`` GETs (default 200, after ``--warmup`` unmeasured ones) of the queue page, and as many of the
   review page cycling over 200 different waiting cases of that queue. Per request: the SQL statements
   (``CaptureQueriesContext``) and the time of ``client.get`` (the whole Django request: middleware, session, view,
   template rendering). The URLs are the reviewer pages under ``/admin/reviews/work/`` when they exist (found in
   the URLconf when the script runs), else the cases admin: ``/admin/cases/case/?queue=<id>&status__exact=queued``
   ordered urgent-first then by due time, and ``/admin/cases/case/<id>/change/``. ``--queue-url``/``--case-url``
   set them by hand (placeholders ``{queue_id}``, ``{queue_slug}``, ``{case_id}``).
3. Claim-next: first ``--claims-per-thread`` calls by one reviewer alone (the uncontended baseline), then
   ``--threads`` reviewers (default 20), each a forked process (as gunicorn's workers serve reviewers: threads of
   one Python process would measure its GIL, each claim waiting on the other threads' Python) with its own
   database connection, a different reviewer with ``cases.work_queue`` on the quick queue. Each first makes one
   unmeasured claim (a server keeps its connections, and a new one's first statements load the backend's catalog
   caches), then all of them call ``reviews.services.claim_next(user=..., queue=...)`` at the same instant (a
   barrier before every call), ``--claims-per-thread`` rounds (default 50), without releasing: each call takes
   a new case. Each call gets a fresh user object (so its grants are read, as in a request); its latency and the
   part spent executing SQL are recorded. Then: every claimed id appears once, each claimed case is held in the
   database by the reviewer whose call returned it (status "claimed"), it has exactly one "Claimed (next in
   queue)" history row, and no case held by someone else beforehand was taken. After each phase the benchmark
   puts its claimed cases back in the queue (plain SQL), so phases compare. Then the same bursts with half the
   reviewers in the quick queue and half in the full queue, and, by default (``--think-ms 1000``; 0 skips it),
   once more with each reviewer pausing ~that long between claims (0.5-1.5 x, and a random start within it:
   reviewers claiming about once a second). Budgets: p99 < 200 ms for the burst, < 30 ms at reviewer pace.
   During every contended phase a sampler counts how often any session of the database waits on a lock
   (``pg_stat_activity``), and what it runs: claim-next skips locked rows, so no claim should ever wait, in one
   queue or two (a reviewer's decision may, briefly: see ``waiting_statement``).
   For diagnosis: ``--claim-threads`` also runs the reviewers as threads of this process, claiming back to back.
4. Where the time goes: EXPLAIN (ANALYZE, BUFFERS) of the slowest statements of each page and of claim-next's
   candidate query, stored in the JSON and printed with ``--explain`` or when a target is missed. To try a fix
   without touching the models, ``--extra-sql "CREATE INDEX ..."`` runs SQL after the data is generated (and
   ``--tag`` keeps that run's results apart).

Run (PostgreSQL, trust auth; the database named in the URL is not used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/review.py --sizes 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/review.py
    DATABASE_URL=... .venv/bin/python bench/review.py --think-ms 1000 --claim-threads --tag with-index \\
        --extra-sql "CREATE INDEX bench_waiting ON cases_case (queue_id, priority DESC, due_at, id) WHERE ..."

Results: a table on stdout and ``bench/results/review-<date>.json``. The scratch databases are dropped at the end
(also on Ctrl-C) unless ``--keep-db``. Like bench/intake.py, it refuses the ``test``, ``postgres`` and template
databases and an existing scratch database unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from common import (
    BenchError,
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
    sizes_parser,
    use_database,
)
from common_data import run_extra_sql, size_label
from review_claims import run_claims
from review_data import generate
from review_fixture import Backlog, create_fixture
from review_pages import discover_urls, run_pages
from review_report import explain_all, print_explains, table_rows

# --- One size -------------------------------------------------------------------------------------------------


def run_size(n: int, database: ScratchDatabase, args: argparse.Namespace, urls_cache: dict[str, Any]) -> dict[str, Any]:
    backlog = Backlog.for_size(n)
    if 2 * backlog.total > n:
        raise BenchError(f"--sizes: {n} is too small for a backlog of {backlog.total} (need at least twice that).")
    database.create()
    print(f"\n=== {n:,} cases: scratch database {database.name!r} created; migrating ...", flush=True)
    use_database(database.name)
    migrate_seconds = migrate()
    fx = create_fixture(args.threads)
    print(f"  migrated in {migrate_seconds:.1f} s; generating {n:,} cases (backlog {backlog.total:,}) ...", flush=True)
    generation = generate(fx, n, backlog, args.seed)
    if args.extra_sql:
        from django.db import connection

        run_extra_sql(args.extra_sql)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE cases_case")
    if not urls_cache:
        urls_cache.update(discover_urls(args.queue_url, args.case_url))
        print(
            f"Reviewer routes under admin/reviews/work/: {urls_cache['reviewer_routes_found'] or 'none'}; "
            f"using {urls_cache['queue_url']} and {urls_cache['case_url']}",
            flush=True,
        )
    pages = run_pages(fx, args, urls_cache)
    claims = run_claims(fx, args)
    print("EXPLAIN ANALYZE of the slowest statements ...", flush=True)
    plans = explain_all(fx, pages)
    for page in pages.values():
        page.pop("slowest_sql")
    return {
        "cases": n,
        "database": database.name,
        "migrate_seconds": round(migrate_seconds, 1),
        "generation": generation,
        **pages,
        "claim_next": claims,
        "explain": plans,
    }


# --- Main -----------------------------------------------------------------------------------------------------


# The --sizes option: comma-separated counts.
parse_sizes = sizes_parser(minimum=1, what="positive numbers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[10_000, 1_000_000],
        help="default 10000,1000000",
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per page first (default 10)")
    parser.add_argument("--threads", type=int, default=20, help="concurrent reviewers claiming (default 20)")
    parser.add_argument("--claims-per-thread", type=int, default=50, help="claim_next calls per thread (default 50)")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=1000.0,
        help="also run claim-next with this pause between a thread's claims (default 1000: reviewer pace; 0: skip)",
    )
    parser.add_argument(
        "--claim-threads",
        action="store_true",
        help="also run 20 reviewers claiming back to back in threads of this process (bound by its GIL), to compare",
    )
    parser.add_argument("--queue-url", default="auto", help="queue page URL template ({queue_id}, {queue_slug})")
    parser.add_argument("--case-url", default="auto", help="review page URL template ({case_id})")
    add_diagnosis_options(parser, benchmark="review")
    add_run_options(
        parser,
        db_name="hitl_bench_review",
        db_help="scratch database prefix (<name>_<size>; default hitl_bench_review)",
        results="review-<date>.json",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.threads < 1 or args.claims_per_thread < 1 or args.warmup < 0:
        parser.error("--requests, --threads and --claims-per-thread must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    databases = scratch_databases(
        [f"{args.db_name}_{size_label(n)}" for n in args.sizes],
        replace=args.replace_db,
        postgres_only="row locks, SKIP LOCKED, 1M rows",
    )
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    per_size: list[dict[str, Any]] = []
    try:
        configure_django(databases[0].url)
        urls: dict[str, Any] = {}
        for n, database in zip(args.sizes, databases, strict=True):
            per_size.append(run_size(n, database, args, urls))
            if not args.keep_db:
                release([database], keep=False)  # dropped once measured: two large databases never sit side by side
        results: dict[str, Any] = {
            **run_record(
                "review",
                databases[0],
                load_at_start,
                client="django.test.Client in this process (no HTTP), CaptureQueriesContext on every request",
            ),
            "parameters": {
                "sizes": args.sizes,
                "requests": args.requests,
                "warmup": args.warmup,
                "threads": args.threads,
                "claims_per_thread": args.claims_per_thread,
                "think_ms": args.think_ms,
                "claim_threads": args.claim_threads,
                "extra_sql": args.extra_sql,
                "seed": args.seed,
            },
            "urls": urls,
            "total_seconds": round(time.perf_counter() - started, 1),
            "sizes": per_size,
        }
        rows = table_rows(per_size)
        print_rows(rows)
        print(
            f"\nPages: {urls['queue_url']} ({urls['queue_source']}) and {urls['case_url']} ({urls['case_source']}); "
            "times are whole Django requests in this process (no HTTP).\nclaim-next: each call in its own "
            "transaction and thread connection; the SQL column is the time inside statement calls (the server's "
            "work, and\nthis process waiting for a core or the GIL to read the answer); the rest is Python. "
            f"{os.cpu_count()} cores. Total run time {results['total_seconds']:.0f} s."
        )
        print_explains(per_size, only_missed=not args.explain, rows=rows)
        save_results(f"review-{args.tag}" if args.tag else "review", results, rows, write=not args.no_write)
        return results
    finally:
        release(databases, keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "review", lambda: run(args), interrupted="Interrupted; the scratch databases were dropped (unless --keep-db)."
    )


if __name__ == "__main__":
    sys.exit(main())
