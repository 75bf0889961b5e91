"""What every benchmark under bench/ shares: the scratch database, Django set-up, the command line, the results
and the table. What only some of them share is beside it: ``common_data`` (the generated data's vocabulary and
SQL literals, the fixture, generating data in SQL), ``common_measure`` (EXPLAIN, percentiles, profiles, SQL
logging) and ``common_server`` (gunicorn, an HTTP client, a process's memory).

Every benchmark creates its own scratch PostgreSQL database (refusing ``test``, ``postgres`` and the templates,
and one that already exists unless told to replace it), points Django at it, and drops it at the end. Results go
to ``bench/results/<name>-<date>.json`` and a table of figures against DESIGN.md "Budgets" is printed.

The scripts are run as ``.venv/bin/python bench/<name>.py``, so this module is imported as ``common`` (and the
others as ``common_data`` and so on).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PROTECTED_DATABASES = frozenset({"test", "postgres", "template0", "template1"})


# --- The scratch database -------------------------------------------------------------------------------------


class BenchError(Exception):
    """A refusal or a failure the user should read (printed without a traceback)."""


@dataclass
class ScratchDatabase:
    """A database this script creates, migrates and drops; never one it did not create (unless --replace-db)."""

    base_url: str
    name: str
    replace: bool
    created: bool = False
    sqlite_dir: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return urlsplit(self.base_url).scheme.startswith("sqlite")

    @property
    def url(self) -> str:
        if self.is_sqlite:
            assert self.sqlite_dir is not None
            return f"sqlite:///{self.sqlite_dir / (self.name + '.sqlite3')}"
        return urlunsplit(urlsplit(self.base_url)._replace(path=f"/{self.name}"))

    def _admin_connection(self) -> Any:
        import psycopg  # only needed on PostgreSQL

        parts = urlsplit(self.base_url)
        # The maintenance database; the URL's query (Django OPTIONS such as server_side_binding) is not libpq's.
        admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres", query=""))
        return psycopg.connect(admin, autocommit=True)

    def create(self) -> None:
        if self.is_sqlite:
            self.sqlite_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
            self.created = True
            return
        from psycopg import sql

        with self._admin_connection() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name]).fetchone()
            if exists and not self.replace:
                raise BenchError(
                    f"Database {self.name!r} already exists (a run with --keep-db?). Drop it, pass --replace-db, "
                    "or choose another --db-name."
                )
            if exists:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
        if self.is_sqlite:
            if self.sqlite_dir is not None:
                shutil.rmtree(self.sqlite_dir, ignore_errors=True)
        else:
            from psycopg import sql

            with self._admin_connection() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
        self.created = False

    def server_version(self) -> str:
        if self.is_sqlite:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with self._admin_connection() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0]}" if row else "PostgreSQL"


def check_database_url(url: str, *, name: str, allow_sqlite: bool) -> None:
    scheme = urlsplit(url).scheme
    if name in PROTECTED_DATABASES:
        raise BenchError(f"Refusing to use {name!r} as the scratch database: choose another --db-name.")
    if scheme.startswith("sqlite"):
        if not allow_sqlite:
            raise BenchError(
                "DATABASE_URL is SQLite: the budgets are for PostgreSQL. Pass --allow-sqlite to run anyway."
            )
    elif scheme not in ("postgres", "postgresql", "pgsql"):
        raise BenchError(f"DATABASE_URL must be postgres://... (got scheme {scheme!r}).")


def scratch_databases(
    names: Iterable[str], *, replace: bool, allow_sqlite: bool = False, postgres_only: str = ""
) -> list[ScratchDatabase]:
    """A run's scratch databases, on the server DATABASE_URL names: checked here, created by the run.
    `postgres_only` says why a benchmark refuses SQLite outright (else --allow-sqlite decides)."""
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        raise BenchError("Set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    if postgres_only and urlsplit(base_url).scheme.startswith("sqlite"):
        raise BenchError(f"DATABASE_URL is SQLite: this benchmark ({postgres_only}) is PostgreSQL only.")
    databases = [ScratchDatabase(base_url=base_url, name=name, replace=replace) for name in names]
    for database in databases:
        check_database_url(base_url, name=database.name, allow_sqlite=allow_sqlite)
    return databases


def release(databases: Iterable[ScratchDatabase], *, keep: bool) -> None:
    """However a run ends: close this process's connections, then drop each scratch database it created and still
    has, or say where it was kept (--keep-db)."""
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()
    for database in databases:
        if not database.created:
            continue
        if keep:
            print(f"Kept the scratch database at {database.url}", flush=True)
        else:
            database.drop()
            print(f"Scratch database {database.name!r} dropped.", flush=True)


# --- Django, in this process ----------------------------------------------------------------------------------


def configure_django(database_url: str) -> dict[str, str]:
    """Point this process (and the environment gunicorn inherits) at the scratch database, then set Django up."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "hitl_project.settings"
    os.environ["DEBUG"] = "false"
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return dict(os.environ)


def migrate() -> float:
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    return time.perf_counter() - start


def use_database(name: str) -> None:
    """Point Django's connections (this thread's and the ones threads will open) at another database of the same
    server: the next size's scratch database, in a benchmark that measures several."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connections.settings["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


def server_settings(names: Iterable[str]) -> dict[str, str]:
    """The PostgreSQL settings that matter to a benchmark's figures, with their units (for the results)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings WHERE name = ANY(%s)", [list(names)]
        )
        return dict(cursor.fetchall())


# --- Report ---------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def row(metric: str, value: str, target: str = "", result: str = "") -> dict[str, str]:
    return {"metric": metric, "value": value, "target": target, "result": result}


def print_rows(rows: list[dict[str, str]]) -> None:
    """The table: metric, value, target and PASS/MISS, in aligned columns."""
    header = row("Metric", "Value", "Target", "Result")
    keys = ("metric", "value", "target", "result")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in keys]

    def line(r: dict[str, str]) -> str:
        return "  ".join(r[k].ljust(w) for k, w in zip(keys, widths, strict=True)).rstrip()

    print()
    print(line(header))
    print(line(row(*("-" * w for w in widths))))
    for r in rows:
        print(line(r))


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write_results(benchmark: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path


def run_record(benchmark: str, database: ScratchDatabase, load_at_start: float, **environment: Any) -> dict[str, Any]:
    """How every results file starts: the benchmark, when, at which revision, the command, and the machine
    (the load average at the start and at the end: others' work on a small machine shows in the figures)."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "command": " ".join([".venv/bin/python", f"bench/{benchmark}.py", *sys.argv[1:]]),
        "environment": {
            "database": database.server_version(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start_and_end": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
            **environment,
        },
    }


def save_results(name: str, results: dict[str, Any], rows: list[dict[str, str]], *, write: bool) -> None:
    """The rows with a target go into the results, and the results to bench/results/<name>-<date>.json (unless
    --no-write)."""
    results["targets"] = [r for r in rows if r["target"]]
    if write:
        print(f"\nResults written to {write_results(name, results).relative_to(ROOT)}")


# --- The command line -----------------------------------------------------------------------------------------

DEFAULT_SEED = 20240601


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's parser, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)


def add_run_options(parser: argparse.ArgumentParser, *, db_name: str, db_help: str, results: str) -> None:
    """What every benchmark takes: its scratch database(s), the seed of what it generates, and whether to write
    its results (`results`: the file's name)."""
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database(s) in place at the end")
    parser.add_argument("--db-name", default=db_name, help=db_help)
    parser.add_argument("--replace-db", action="store_true", help="drop and recreate a scratch database that exists")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed of the generated data (default {DEFAULT_SEED})"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not write bench/results/{results}")


def add_diagnosis_options(parser: argparse.ArgumentParser, *, benchmark: str) -> None:
    """What the benchmarks generating their data in SQL also take: SQL to try, a tag for the results, the plans."""
    parser.add_argument(
        "--extra-sql",
        action="append",
        default=[],
        help="SQL run after the data is generated (e.g. a CREATE INDEX to try); repeatable",
    )
    parser.add_argument("--tag", default="", help=f"write bench/results/{benchmark}-<tag>-<date>.json instead")
    parser.add_argument("--explain", action="store_true", help="print every EXPLAIN ANALYZE (else only on a MISS)")


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler for SIGINT and SIGTERM: end the run through its finally blocks (scratch database dropped)."""
    raise KeyboardInterrupt(f"signal {signum}")


def run_main(script: str, run: Callable[[], object], *, interrupted: str) -> int:
    """A benchmark's main: run it; a BenchError is printed without a traceback (exit 2), an interruption with
    `interrupted` (exit 130). SIGINT and SIGTERM both end the run through its finally blocks; SIGINT explicitly,
    since a shell starting this in the background would otherwise have it ignored."""
    signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        run()
    except BenchError as exc:
        print(f"bench/{script}.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
    return 0


def sizes_parser(*, minimum: int, what: str) -> Callable[[str], list[int]]:
    """The `--sizes` option's type: comma-separated counts (underscores allowed), each at least `minimum`."""

    def parse(text: str) -> list[int]:
        try:
            sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"--sizes: {exc}") from exc
        if not sizes or min(sizes) < minimum:
            raise argparse.ArgumentTypeError(f"--sizes: {what}, comma-separated")
        return sizes

    return parse
