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
import json
import os
import random
import sys
from typing import Any
from urllib.parse import urlsplit

from common import (
    ROOT,
    add_run_options,
    bench_parser,
    configure_django,
    migrate,
    release,
    run_main,
    run_record,
    save_results,
    scratch_databases,
)
from common_server import Server
from intake_cases import BULK_BATCH, create_fixture
from intake_diagnostics import run_diagnostics
from intake_floor import FLOOR_DIR, pooled_single, run_rounds, run_scaling, start_floor, versus_floor
from intake_http import (
    batches_of,
    floor_target,
    project_target,
    rate_summary,
    run_bulk,
    run_single,
    run_unauthenticated,
    single_bodies,
)
from intake_in_process import run_bulk_create, run_submit_cases
from intake_report import print_table, table_rows

WARMUP_REQUESTS = 100
# Both servers' user throttle (HITL_THROTTLE_USER): see run().
THROTTLE_RATE = "1000/second"


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
