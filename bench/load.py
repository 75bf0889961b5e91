"""Load test: mixed traffic for minutes on gunicorn with several workers and an RQ worker, and nothing lost.

Against DESIGN.md "Budgets": "Memory of a web process stays flat over 100,000 requests; a 10-minute load test on
gunicorn with several workers and an RQ worker ends with zero 5xx and every submitted case stored exactly once",
and "2 web processes take more than 1.6x the intake of 1".

On a scratch PostgreSQL database it creates (``bench_load_...``, dropped at the end, also on Ctrl-C):

1. The fixture, through the services: two live categories (exception pattern; sensitive labels and rules, a
   high-value limit, an 80 % ramp, 5 % audits) with their five queues and an active model version; the
   integration user (``governance.submit_case`` on both, an API token); a reviewer per locust user (Reviewer
   group, ``cases.work_queue`` on the quick, full and audit queues) and an escalation manager per locust user
   (the escalation and expert queues), each with a token.
2. gunicorn (``--workers``, sync workers, as production serves) and ``manage.py rqworker default`` on a real Redis
   (``--redis-url``, db 9 by default; refused if not empty, emptied at the end).
3. The mixed phase, ``--minutes`` long: ``--users`` locust users (bench/load_traffic.py, headless, in a process of
   its own: gevent's monkey-patching never meets Django), 6:3:1 integrations, reviewers and managers. Intake of
   single cases (most), small bulk batches, repeats of cases already sent and concurrent duplicates; claim-next
   and decisions (approve, correct, reject with a reason, escalate, release), batch approval, audits; reads of
   queues, a queue's cases, a case, metrics; and the races (claiming a case another holds, deciding a final
   one: 409). Every response is counted by request and status; every external id submitted is kept.
   The web workers' RSS (psutil; VmRSS) is sampled at the start, every few seconds, and at the end;
   flat means a worker grew by at most 16 MiB from the sample after a tenth of the requests to the end.
   ``--min-requests 100000`` goes on past the minutes until that many requests were answered (the memory budget's
   length, which a 2-core machine shared with other work may not reach in 10 minutes).
4. The intake phase: gunicorn restarted with 1 worker, then 2, ``--scale-rounds`` times alternately, each driven
   by the same ``--scale-users`` users posting new single cases back to back: cases created per second after a
   warm-up, and the ratio of the medians (2 workers over 1).
5. The checks, once the RQ queue has drained: every submitted case (all phases) stored exactly once and no case
   that was not submitted; one 201 (or bulk "created") per case on the client side; one ``case.routed`` audit
   event per case; the human decisions the client saw succeed equal the Decision rows; ``manage.py verify_audit``;
   no failed RQ job; no deadlock in PostgreSQL's statistics of the scratch database; the gunicorn and RQ logs'
   tracebacks, grouped and printed condensed after the table.

The API throttle is raised for the run (``HITL_THROTTLE_USER``): one integration account sends every intake, and the
load, not the limit, is what is measured. The audit key and anchor log are the run's own (a temporary file).

Needs locust: ``.venv/bin/pip install -e ".[bench]"``. Run (PostgreSQL, trust auth; the database in the URL is not
used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/load.py
    DATABASE_URL=... .venv/bin/python bench/load.py --minutes 1 --scale-seconds 20 --tag short
    DATABASE_URL=... .venv/bin/python bench/load.py --min-requests 100000 --scale-rounds 3

Results: a table (PASS/MISS per budget) on stdout and ``bench/results/load-<date>.json`` (``--tag`` names it
``load-<tag>-<date>.json``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from common import (
    BenchError,
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
)
from load_checks import check_cases, check_database, check_decisions, log_problems, read_ids, verify_audit, wait_for_rq
from load_fixture import create_fixture
from load_phases import all_statuses, run_mixed, run_scaling, unexpected_total
from load_processes import RqWorker
from load_report import table_rows

DB_PREFIX = "bench_load_"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


# --- Main ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the mixed phase (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers in the mixed phase (default 2)")
    parser.add_argument("--users", type=int, default=24, help="locust users in the mixed phase (default 24)")
    parser.add_argument(
        "--min-requests",
        type=int,
        default=0,
        help="go on past --minutes until this many requests were answered (e.g. 100000: the memory budget's length)",
    )
    parser.add_argument("--max-minutes", type=float, default=60.0, help="the limit of --min-requests (default 60)")
    parser.add_argument("--scale-users", type=int, default=8, help="users of the intake phase (default 8)")
    parser.add_argument(
        "--scale-seconds", type=float, default=60.0, help="measured seconds per intake run (default 60)"
    )
    parser.add_argument("--scale-warmup", type=float, default=5.0, help="warm-up seconds per intake run (default 5)")
    parser.add_argument("--scale-rounds", type=int, default=2, help="rounds of 1 then 2 workers (default 2; 0: none)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"the RQ Redis (default {DEFAULT_REDIS_URL})")
    parser.add_argument("--flush-redis", action="store_true", help="empty the Redis database first if it is not")
    parser.add_argument("--tag", default="", help="write bench/results/load-<tag>-<date>.json instead")
    add_run_options(
        parser,
        db_name=f"{DB_PREFIX}scratch",
        db_help=f"the scratch database (default {DB_PREFIX}scratch; must start with {DB_PREFIX})",
        results="load-<date>.json",
    )
    args = parser.parse_args(argv)
    if not args.db_name.startswith(DB_PREFIX):
        parser.error(f"--db-name must start with {DB_PREFIX}")
    if args.minutes <= 0 or args.workers < 2 or args.users < 3 or args.scale_users < 1 or args.scale_rounds < 0:
        parser.error("--minutes > 0, --workers >= 2, --users >= 3 (one of each kind), --scale-users >= 1")
    return args


def claim_redis(url: str, *, flush: bool) -> Any:
    """The run's Redis database: refused if it holds anything (another run's jobs would reach this database)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = client.dbsize()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {url} is not reachable: {exc}") from exc
    if keys and not flush:
        raise BenchError(f"Redis {url} holds {keys} keys: pass --flush-redis to empty it, or another --redis-url.")
    client.flushdb()
    return client


def run(args: argparse.Namespace) -> dict[str, Any]:
    (database,) = scratch_databases([args.db_name], replace=args.replace_db, postgres_only="gunicorn load")
    load_at_start = os.getloadavg()[0]
    redis_client = claim_redis(args.redis_url, flush=args.flush_redis)
    rq: RqWorker | None = None
    problems: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-load-") as tmp:
        work_dir = Path(tmp)
        try:
            database.create()
            print(f"Scratch database {database.name!r} created; migrating ...", flush=True)
            os.environ.update(
                REDIS_URL=args.redis_url,
                AUDIT_KEY=secrets.token_hex(32),
                AUDIT_ANCHOR_FILE=str(work_dir / "audit-anchors.jsonl"),
                HITL_THROTTLE_USER="10000000/minute",
            )
            env = configure_django(database.url)
            migrate()
            fixture = create_fixture(args.users)
            rq = RqWorker(env=env)
            rq.start()

            phases: list[dict[str, Any]] = []
            mixed = run_mixed(args, env, fixture, work_dir, problems, rq)
            phases.append(mixed)
            scaling = None
            if args.scale_rounds:
                scaling = run_scaling(args, env, fixture, work_dir, problems)
                phases.extend(scaling["runs"])

            print(
                "Checking: the RQ queue drained, every case stored once, the decisions, the audit chain ...", flush=True
            )
            rq_state = wait_for_rq(args.redis_url)
            problems.extend(log_problems(rq.log_path, "rqworker"))
            submitted = read_ids([phase["ids_file"] for phase in phases])
            checks = {
                "rq": rq_state,
                "cases": check_cases(submitted),
                "decisions": check_decisions(Counter(mixed["decisions"])),
                "verify_audit": verify_audit(env),
                "database": check_database(),
            }
            statuses = all_statuses(phases)
            results: dict[str, Any] = {
                **run_record(
                    "load",
                    database,
                    load_at_start,
                    server=f"gunicorn hitl_project.wsgi -w {args.workers} (sync workers)",
                    client="locust FastHttpUser, headless (bench/load_traffic.py)",
                    rq="manage.py rqworker default",
                ),
                "parameters": {k: v for k, v in vars(args).items() if k not in ("keep_db", "replace_db")},
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "unexpected": unexpected_total(phases),
                "created_responses": sum(phase["created_responses"] for phase in phases),
                "created_twice": sum(len(phase["created_twice"]) for phase in phases),
                "mixed": {k: v for k, v in mixed.items() if k != "ids_file"},
                "scaling": scaling,
                "checks": checks,
                "server_problems": problems,
            }
            if scaling:
                for run_ in scaling["runs"]:
                    run_.pop("ids_file", None)
                    run_.pop("latency_ms", None)
            rows = table_rows(results)
            print_rows(rows)
            print_problems(problems, [*mixed["unexpected"], *(u for r in phases[1:] for u in r["unexpected"])])
            save_results(f"load-{args.tag}" if args.tag else "load", results, rows, write=not args.no_write)
            return results
        finally:
            if rq is not None:
                rq.stop()
            redis_client.flushdb()
            release([database], keep=args.keep_db)


def print_problems(problems: list[dict[str, Any]], unexpected: list[dict[str, Any]]) -> None:
    """The logs' errors (condensed tracebacks) and the first unexpected answers, after the table."""
    for problem in problems:
        print(
            f"\n{problem['count']} x in the {problem['source']} log: {problem['error']}"
            f"{' (' + problem['where'] + ')' if problem['where'] else ''}\n{problem['condensed']}"
        )
    for answer in unexpected[:8]:
        body = " ".join(answer["body"].split())[:200]
        print(f"\nUnexpected answer to {answer['name']!r}: {answer['status']} {body}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "load",
        lambda: run(args),
        interrupted="Interrupted; gunicorn, the RQ worker and the traffic were stopped (and the scratch database "
        "dropped unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
