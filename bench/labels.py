"""Labels benchmark: the label export of 1,000,000 labels (its rate, and the web process's memory), training the
built-in model on 100,000 labels, and the time a prediction adds to intake.

Against DESIGN.md "Budgets": "Label export: 1,000,000 labels stream at 20,000 or more a second with the web
process's memory flat. Training the built-in model on 100,000 labels under 2 minutes; a prediction at intake adds
under 5 ms."

1. Export. For each size in ``--sizes`` (labels; default 100,000 then 1,000,000) a scratch PostgreSQL database
   (``<db-name>_<size>``) is created, migrated and filled in SQL (``INSERT ... SELECT generate_series``, in
   chunks, with progress lines): one category (``create_bench_category``, its PII field ``customer``), 10
   reviewers (9 certified through the service, so 90 % of the labels pass the gate) and a data curator with an
   API token; then per label a case (its input a subject, a message whose words tell the label, an order number,
   an e-mail address in one in five, and the customer's name, which the export redacts), the reviewer's decision
   (approve when the model was right, 85 %; else correct) and the label, in time order. Then VACUUM ANALYZE.
   gunicorn (one sync worker, as ``common_server.Server``, with a longer ``--timeout``: a sync worker is killed by its
   timeout in the middle of a long streamed response) serves ``GET /api/v1/labels/?category=<slug>&format=F``
   for each of ``--formats`` (jsonl, csv): a small warm-up export first, then the whole category, read by one
   http.client connection in 64 KiB reads, its records counted (lines; the CSV's header aside) and checked
   against the labels in the database. Figures: records a second (request sent to last byte), the worker's CPU
   seconds (``/proc/<pid>/stat``), and its memory: the kernel's peak resident set (``VmHWM`` in
   ``/proc/<pid>/status``, reset through ``clear_refs`` just before the request) less its resident set before
   the request. Flat means the largest size's growth is not above the smallest's (within 25 % or 16 MiB).
2. Training, in a scratch database of its own (``<db-name>_train_<n>``), generated the same way but with every
   reviewer certified: ``metrics.services.training.train_model`` on the category's ``--train-labels`` (100,000)
   gated labels, timed from the call to the registered version, with the held-out accuracy it reports.
3. Prediction: the trained version's predictor loaded once (``governance.predictor.load_predictor``), then, for
   ``--predictions`` (1,000) different cases' inputs, ``predictor.predict([input_text(input, pii_fields=...)])``
   timed one call at a time after 20 warm-up calls: p50/p99/max; beside it, on the same text right after, the
   same predictor without its lean path (scikit-learn's ``predict_proba``), the reference the lean path repeats.
4. Prediction at intake: the version promoted to active, then for ``--intake-requests`` (500) of those inputs,
   ``POST /api/v1/cases/`` in this process (Django's test client, token auth) three times on fresh external ids:
   without an answer (the lean path predicts), without one with scikit-learn predicting, and with the model's
   own label and confidence sent (routed the same way). What a prediction adds: each unanswered request's time
   less the answered one's on the same input, p50/p99.

For diagnosis: ``--profile`` prints a cProfile of one in-process export (Django's test client, its
``streaming_content`` read to the end) at the first size, and ``--keep-db`` leaves the databases to try more by
hand.

Run (PostgreSQL, trust auth; the database named in the URL is not used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/labels.py
    DATABASE_URL=... .venv/bin/python bench/labels.py --sizes 10000 --train-labels 10000 --profile

Results: a table on stdout and ``bench/results/labels-<date>.json`` (``labels-<tag>-<date>.json`` with
``--tag``). The scratch databases are dropped at the end (also on Ctrl-C) unless ``--keep-db``; an existing one
is refused unless ``--replace-db``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from common import (
    ScratchDatabase,
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
from labels_data import CERTIFIED, MODEL_RIGHT, REVIEWERS, create_fixture, generate
from labels_export import SERVER_TIMEOUT_SECONDS, WARMUP_LABELS, ExportServer, measure_export, profile_export
from labels_report import BUDGET_TRAINING_LABELS, table_rows
from labels_training import run_training

FORMATS = ("jsonl", "csv")

SERVER_SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "jit")


# --- One export size ------------------------------------------------------------------------------------------


def run_export_size(labels: int, database: ScratchDatabase, env: dict[str, str], args: argparse.Namespace) -> Any:
    from reviews.models import Label

    database.create()
    print(f"\n=== export of {labels:,} labels: scratch database {database.name!r} created; migrating ...", flush=True)
    use_database(database.name)
    migrate_seconds = migrate()
    fx = create_fixture(certified=CERTIFIED)
    generation = generate(fx, labels, args.seed)
    warmup_until = (
        Label.objects.order_by("created_at", "id").values_list("created_at", flat=True)[WARMUP_LABELS].isoformat()
    )
    profile = ""
    if args.profile and not args.profiled:
        print("  profiling one in-process export ...", flush=True)
        profile = profile_export(fx, args.formats[0], args.profile_top)
        print(profile)
        args.profiled = True
    server = ExportServer(env={**env, "DATABASE_URL": database.url})
    exports: dict[str, Any] = {}
    try:
        server.start(fx.token)
        print(f"  gunicorn (1 sync worker, --timeout {SERVER_TIMEOUT_SECONDS}) up on 127.0.0.1:{server.port}")
        for fmt in args.formats:
            exports[fmt] = measure_export(server, fx, fmt, labels, warmup_until.replace("+00:00", "Z"))
    finally:
        server.stop()
    return {
        "labels": labels,
        "database": database.name,
        "migrate_seconds": round(migrate_seconds, 1),
        "generation": generation,
        "server": " ".join(["gunicorn", *server.command[1:]]).replace(str(server.port), "<port>"),
        "exports": exports,
        **({"profile": profile} if profile else {}),
    }


# --- Main -----------------------------------------------------------------------------------------------------

parse_sizes = sizes_parser(minimum=WARMUP_LABELS + 1, what=f"label counts above {WARMUP_LABELS}")


def parse_formats(text: str) -> list[str]:
    formats = [part.strip() for part in text.split(",") if part.strip()]
    if not formats or set(formats) - set(FORMATS):
        raise argparse.ArgumentTypeError(f"--formats: some of {','.join(FORMATS)}")
    return formats


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[100_000, 1_000_000], help="labels exported; default 100000,1000000"
    )
    parser.add_argument("--no-export", action="store_true", help="train and predict only")
    parser.add_argument("--formats", type=parse_formats, default=list(FORMATS), help="default jsonl,csv")
    parser.add_argument(
        "--train-labels", type=int, default=BUDGET_TRAINING_LABELS, help="labels to train on (0: no training)"
    )
    parser.add_argument("--predictions", type=int, default=1000, help="timed predictions (default 1000)")
    parser.add_argument(
        "--intake-requests",
        type=int,
        default=500,
        help="POSTs of each kind timing a prediction at intake (default 500)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one in-process export")
    parser.add_argument("--profile-top", type=int, default=30, help="functions in each profile listing (default 30)")
    parser.add_argument("--tag", default="", help="write bench/results/labels-<tag>-<date>.json instead")
    add_run_options(
        parser,
        db_name="bench_labels",
        db_help="scratch database prefix (<name>_<size>, <name>_train_<n>; default bench_labels)",
        results="labels-<date>.json",
    )
    args = parser.parse_args(argv)
    if args.no_export and not args.train_labels:
        parser.error("--no-export needs --train-labels")
    if args.train_labels and args.train_labels < 1000:
        parser.error("--train-labels: 0, or at least 1000")
    if args.predictions < 10:
        parser.error("--predictions: at least 10")
    if args.intake_requests < 10:
        parser.error("--intake-requests: at least 10")
    args.profiled = False
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.no_export:
        args.sizes = []
    names = [f"{args.db_name}_{size_label(n)}" for n in args.sizes]
    if args.train_labels:
        names.append(f"{args.db_name}_train_{size_label(args.train_labels)}")
    databases = scratch_databases(names, replace=args.replace_db, postgres_only="a streamed export over gunicorn")
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    per_size: list[dict[str, Any]] = []
    training: dict[str, Any] | None = None
    try:
        env = configure_django(databases[0].url)
        settings_seen: dict[str, str] = {}
        for n, database in zip(args.sizes, databases, strict=False):
            per_size.append(run_export_size(n, database, env, args))
            settings_seen = server_settings(SERVER_SETTINGS)
            if not args.keep_db:
                release([database], keep=False)  # two large databases never sit side by side
        if args.train_labels:
            training = run_training(args.train_labels, databases[-1], args)
            if not args.keep_db:
                release([databases[-1]], keep=False)
        results: dict[str, Any] = {
            **run_record(
                "labels",
                databases[0],
                load_at_start,
                server_settings=settings_seen,
                export="gunicorn, 1 sync worker; one http.client connection reading 64 KiB at a time; the worker's "
                "memory from /proc/<pid>/status (VmHWM reset by clear_refs, less VmRSS before the request)",
                training="metrics.services.training.train_model in this process",
            ),
            "parameters": {
                "sizes": args.sizes,
                "formats": args.formats,
                "train_labels": args.train_labels,
                "predictions": args.predictions,
                "seed": args.seed,
                "reviewers": REVIEWERS,
                "certified": CERTIFIED,
                "model_right": MODEL_RIGHT,
            },
            "total_seconds": round(time.perf_counter() - started, 1),
            "sizes": per_size,
            "training": training,
        }
        rows = table_rows(per_size, training)
        print_rows(rows)
        print(
            f"\nExport: client round trips on loopback to gunicorn (1 sync worker), the body read to its end; the "
            f"client shares the machine with the server.\n{os.cpu_count()} cores; load average at start "
            f"{load_at_start:.2f}. Total run time {results['total_seconds']:.0f} s."
        )
        save_results(f"labels-{args.tag}" if args.tag else "labels", results, rows, write=not args.no_write)
        return results
    finally:
        release(databases, keep=args.keep_db)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "labels",
        lambda: run(args),
        interrupted="Interrupted; gunicorn was stopped and the scratch databases dropped (unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
