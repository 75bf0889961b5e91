"""SLA sweep benchmark: one ``cases.services.sla.sweep()`` over 1,000,000 open cases of which 10,000 are overdue.

Against DESIGN.md "Budgets": "the SLA sweep over 1,000,000 open cases with 10,000 overdue under 2 s".

It creates a scratch PostgreSQL database (``--db-name``, never ``test``), migrates it, and then:

1. Data. ``--categories`` categories (``governance.services.create_category``: each gets its quick, full,
   escalation, expert and audit queues, quick and full overflowing to escalation), an active model version each,
   three reviewers per category with ``cases.work_queue`` on its quick, full and escalation queues (the people the
   sweep notifies), and ``--open`` open cases generated in SQL (``INSERT ... SELECT generate_series`` in chunks of
   100,000, with progress lines). A permutation of the ids spreads the kinds of case over the table:

   * ``--overdue`` cases overdue and free to move: due 1 min to 3 h before the data's anchor time (the start of
     generation), 90 % queued and 10 % claimed with an expired claim;
   * ``overdue/20`` overdue cases held under a live claim (the sweep leaves them to their reviewer);
   * ``overdue/10`` escalated cases overdue in an escalation queue (no next queue) whose breach is already
     recorded (an ``SlaBreach`` row; the sweep must skip them every minute);
   * the rest queued (2 % claimed, 5 % urgent) in the quick (70 %) or full (30 %) queues, due 30 min to one SLA
     (24 h quick, 4 h full) after the anchor, so none becomes overdue while the benchmark runs. Those already past
     80 % of their SLA carry ``sla_warned_at``, as earlier sweeps would have left them.

   Every case also gets its history row and ``case.routed`` audit event (the tables the sweep appends to are
   not empty); the stale escalated ones their earlier breach. Then ``--extra-sql`` (e.g. a CREATE INDEX to try)
   and VACUUM ANALYZE.
2. EXPLAIN (ANALYZE, BUFFERS) of the overdue selection and of the biggest queue's warning condition, in a
   transaction rolled back (this also warms the cache, as a sweep every minute would). Then, right before
   timing, the warnings "the previous sweep, a minute ago" would have made (its condition, without notices), so
   the timed sweep warns about one minute's worth of cases, as in production where it runs every minute.
3. One ``cases.services.sla.sweep()`` in this process, timed, with an execute wrapper recording every statement (start,
   duration): seconds, warned/moved/breached, the statement count, the time in SQL and in Python, the time by
   phase (each statement's Python lead-in is counted with it: building 10,000 audit events falls under "audit
   events"), and the slowest statements. Then checks: the breaches, history rows and ``case.sla_breached`` audit
   events written (and that chain's links and hashes), the cases moved, the held and stale ones untouched.
   Also the WAL written meanwhile (bytes, full-page images; every session's, so an upper bound on a shared
   server) and the server settings that matter (shared_buffers, wal_compression...), in the JSON.
4. A second ``sweep()`` right after: seconds and counts (no move and no breach; it warns the cases that crossed
   80 % of their SLA since the first). Then a third at the second's instant (``sweep(now=...)``): a sweep with
   nothing to do at all, what the budget's "under 0.2 s" is about; its statements are the fixed cost of every
   sweep (a probe per queue).

For diagnosis: ``--profile`` runs one more sweep first, under cProfile and rolled back (then VACUUM), and prints
its profile; ``--prepare-only`` builds and keeps the database without sweeping, to try fixes by hand (each try
in a transaction rolled back, with ``sweep(now=...)`` at a fixed time: cases not overdue are due 30 min or more
after the anchor printed).

Run (PostgreSQL, trust auth; the database named in the URL is not used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/sweep.py
    DATABASE_URL=... .venv/bin/python bench/sweep.py --open 50000 --overdue 2000 --explain
    DATABASE_URL=... .venv/bin/python bench/sweep.py --tag idx --extra-sql "CREATE INDEX ... ON cases_case (...)"

Results: a table on stdout and ``bench/results/sweep-<size>-<date>.json`` (``sweep-<tag>-<date>.json`` with
``--tag``). E-mail goes to Django's in-memory backend (``EMAIL_URL=memorymail://`` unless set): the sweep's
notices are written, no mail transport is timed. The scratch database is dropped at the end (also on Ctrl-C)
unless ``--keep-db``; an existing one is refused unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from common import (
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
)
from common_data import size_label
from sweep_breakdown import explain_before
from sweep_data import generate, prepare, previous_sweep_warnings
from sweep_fixture import DUE_GAP, Mix, create_fixture
from sweep_report import BUDGET_OPEN, BUDGET_OVERDUE, print_breakdown, print_explains, table_rows
from sweep_runs import SERVER_SETTINGS, rehearsal, run_sweeps

# --- Main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--open", type=int, default=BUDGET_OPEN, help="open cases (default 1000000)")
    parser.add_argument("--overdue", type=int, default=BUDGET_OVERDUE, help="of those, overdue (default 10000)")
    parser.add_argument("--categories", type=int, default=4, help="categories, five queues each (default 4)")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="generate the data and keep the database (implies --keep-db), without sweeping: to try fixes by hand",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="first a rehearsal sweep under cProfile, rolled back (then VACUUM), and print the profile",
    )
    parser.add_argument("--profile-top", type=int, default=35, help="functions listed in the profile (default 35)")
    add_diagnosis_options(parser, benchmark="sweep")
    add_run_options(
        parser,
        db_name="hitl_bench_sweep",
        db_help="the scratch database (default hitl_bench_sweep)",
        results="sweep-<size>-<date>.json",
    )
    args = parser.parse_args(argv)
    args.keep_db = args.keep_db or args.prepare_only
    if args.open < 1 or args.overdue < 1 or args.categories < 1:
        parser.error("--open, --overdue and --categories must be at least 1")
    if args.overdue * 2 > args.open:
        parser.error("--overdue must be at most half of --open")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    (database,) = scratch_databases([args.db_name], replace=args.replace_db, postgres_only="1M rows, SKIP LOCKED")
    mix = Mix.for_size(args.open, args.overdue)
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    os.environ.setdefault("EMAIL_URL", "memorymail://")
    try:
        database.create()
        print(f"Scratch database {database.name!r} created; migrating ...", flush=True)
        configure_django(database.url)
        migrate_seconds = migrate()
        from django.utils import timezone

        fx = create_fixture(args.categories)
        anchor = timezone.now()
        print(
            f"  migrated in {migrate_seconds:.1f} s; generating {mix.open:,} open cases in {args.categories} "
            f"categories: {mix.overdue:,} overdue, {mix.held:,} overdue under a live claim, {mix.stale:,} escalated "
            f"with their breach recorded, {mix.waiting:,} waiting ...",
            flush=True,
        )
        generation = generate(fx, mix, anchor, args.seed)
        state = prepare(args, fx)
        print("EXPLAIN ANALYZE of the overdue selection and of a warning condition ...", flush=True)
        plans = explain_before(fx)
        if args.prepare_only:
            print(
                f"--prepare-only: no sweep. Data anchored at {anchor.isoformat()} (cases not overdue are due from "
                f"{DUE_GAP} after it); state: {state}",
                flush=True,
            )
            return {"anchor": anchor.isoformat(), "state": state, "explain": plans}
        profiled = None
        if args.profile:
            print("Rehearsal: one sweep under cProfile, rolled back ...", flush=True)
            profiled = rehearsal(args.profile_top)
        previous = previous_sweep_warnings(fx)
        print(f"  the previous sweep's warnings (a minute ago): {previous:,} cases", flush=True)
        sweeps = run_sweeps(fx, mix, anchor)
        results: dict[str, Any] = {
            **run_record(
                "sweep",
                database,
                load_at_start,
                email_backend=os.environ["EMAIL_URL"],
                server_settings=server_settings(SERVER_SETTINGS),
            ),
            "parameters": {
                "open": mix.open,
                "overdue": mix.overdue,
                "held_overdue_under_live_claim": mix.held,
                "stale_escalated_already_breached": mix.stale,
                "categories": args.categories,
                "extra_sql": args.extra_sql,
                "seed": args.seed,
            },
            "migrate_seconds": round(migrate_seconds, 1),
            "generation": generation,
            "state": {**state, "previous_sweep_warned": previous},
            "explain": plans,
            "rehearsal_profiled": profiled,
            **sweeps,
            "total_seconds": round(time.perf_counter() - started, 1),
        }
        rows = table_rows(mix, {"generation": generation, "state": state}, sweeps)
        print_rows(rows)
        print_breakdown(sweeps["first"])
        print(
            f"\nOne process, {os.cpu_count()} cores; the timed call is cases.services.sla.sweep() in this process, "
            "with an execute wrapper timing each statement (its overhead is in the figure). "
            "A statement's SQL time is the\n"
            "whole execute call: the server's work and psycopg adapting the parameters (client-side binding quotes "
            "them in Python: a\nlarge part of a 10,000-row bulk INSERT). Total run time "
            f"{results['total_seconds']:.0f} s."
        )
        if args.explain or any(r["result"] == "MISS" for r in rows):
            print_explains(plans)
        if profiled:
            print(f"\n--- cProfile of the rehearsal (rolled back), by own time ---\n{profiled['profile']['tottime']}")
            print(f"--- by cumulative time ---\n{profiled['profile']['cumulative']}")
        name = f"sweep-{args.tag}" if args.tag else f"sweep-{size_label(mix.open)}"
        save_results(name, results, rows, write=not args.no_write)
        return results
    finally:
        release([database], keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "sweep", lambda: run(args), interrupted="Interrupted; the scratch database was dropped (unless --keep-db)."
    )


if __name__ == "__main__":
    sys.exit(main())
