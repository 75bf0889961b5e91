"""What the benchmarks under bench/ share: the scratch database, Django set-up, the generated data's vocabulary and
SQL literals, the fixture (categories and people), generating data in SQL, EXPLAIN, percentiles, SQL logging,
gunicorn and an HTTP client, the command line, the results and the table.

Every benchmark creates its own scratch PostgreSQL database (refusing ``test``, ``postgres`` and the templates,
and one that already exists unless told to replace it), points Django at it, and drops it at the end. Results go
to ``bench/results/<name>-<date>.json`` and a table of figures against DESIGN.md "Budgets" is printed.

The scripts are run as ``.venv/bin/python bench/<name>.py``, so this module is imported as ``common``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User
    from django.db.models import QuerySet

    from cases.models import Queue
    from governance.models import Category, ModelVersion

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


# --- gunicorn, and an HTTP client for it ----------------------------------------------------------------------

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """gunicorn sync workers (one unless told) on the scratch database `env` names, as production serves. `app` and
    `chdir` serve another WSGI app on the same settings (bench/floor); `ready_path` is the GET that answers 200 with
    the token once it is up."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="hitl-bench-gunicorn-")[1]))
    app: str = "hitl_project.wsgi"
    chdir: Path | None = None
    ready_path: str = "/api/v1/categories/"

    @property
    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            self.app,
            *(["--chdir", str(self.chdir)] if self.chdir is not None else []),
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "120",
        ]

    def start(self, token: str, timeout: float = 60.0) -> None:
        """Start it and wait until GET `ready_path` with this API token answers 200."""
        env = {**self.env, "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1"}
        with self.log_path.open("wb") as log:
            # Its own session: a Ctrl-C in the terminal reaches this script, which then stops gunicorn itself.
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.ready_path, headers={"Authorization": f"Token {token}"})
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return
            raise BenchError(f"gunicorn answered {status} to GET {self.ready_path}:\n{self.log_tail()}")
        raise BenchError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)


class HttpClient:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it, as gunicorn's sync worker does after
    every response; counted), with an API token or other headers on every request."""

    def __init__(self, port: int, token: str | None, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.closed_by_server = 0

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        """Status, body, and the round trip in seconds (request sent to last byte read)."""
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.will_close:
            self.closed_by_server += 1
        return response.status, data, elapsed

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        return self.request("POST", path, body)

    def get(self, path: str) -> tuple[int, bytes, float]:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


# --- The generated data: what the cases say, and SQL literals -------------------------------------------------

MODEL_LABEL = "bench-model@1"  # every bench category's active model version, as a case names it
INTEGRATION_USER = "bench-integration"  # the user cases are submitted as
CHUNK = 100_000  # cases generated per INSERT ... SELECT generate_series
GENERATED_SEQ_BASE = 10_000_000  # generated audit events sit far above the real chains (category, model version)

SENSITIVE_LABEL = "fraud_suspected"
LABELS = ("shipping", "refund", "billing", "account", "cancellation", SENSITIVE_LABEL)
RULES = ("keyword_match", "repeat_contact", "chargeback_history", "vip_customer")
CHANNELS = ("email", "chat", "phone", "web")
TIERS = ("free", "silver", "gold", "platinum")
REGIONS = ("eu-west", "eu-north", "us-east", "apac")
LOCALES = ("en-GB", "de-DE", "fr-FR", "en-US")
TEXTS = (
    "Where is my order? It was supposed to arrive on Monday and the tracking page has not changed since.",
    "I was charged twice for the same subscription this month, please refund one of the payments.",
    "I cannot log in since I changed my phone; the code never arrives by SMS.",
    "Please cancel my plan at the end of the billing period, I no longer need the premium features.",
    "The parcel arrived damaged, the box was crushed and two of the glasses are broken.",
)


def size_label(n: int) -> str:
    """1000000 -> '1m', 50000 -> '50k', 1234 -> '1234': for database and results file names."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def sql_text_array(values: Iterable[str]) -> str:
    """A text[] literal of the benchmarks' own constants and names (no user input reaches the SQL)."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def sql_int_array(values: Iterable[int]) -> str:
    """A bigint[] literal (ids)."""
    return "ARRAY[" + ", ".join(str(int(v)) for v in values) + "]::bigint[]"


def sql_interval(delta: timedelta) -> str:
    """An interval literal, to the second."""
    return f"interval '{int(delta.total_seconds())} seconds'"


AUDIT_EVENT_INSERT = (
    "INSERT INTO governance_auditevent "
    "(seq, created_at, kind, actor_id, actor_username, category_slug, case_id, payload, prev_hash, hash)"
)


def routed_events_sql(*, seq: str, integration_id: int, category_slug: str, status: str, lo: int, hi: int) -> str:
    """SELECT, for the cases lo..hi, the case.routed event intake records, to follow AUDIT_EVENT_INSERT. `seq`,
    `category_slug` and `status` (the status the case was routed to) are SQL expressions over cases_case. The
    hashes are placeholders, unique per case: the chain is not recomputed (the scratch database is dropped)."""
    return f"""SELECT {seq}, created_at, 'case.routed', {integration_id}, '{INTEGRATION_USER}', {category_slug}, id,
    jsonb_build_object('external_id', external_id, 'route', route, 'reasons', route_reasons, 'status', {status},
                       'confidence', confidence, 'model_version', '{MODEL_LABEL}', 'policy_version', 1,
                       'audit_sampled', audit_sampled, 'draws', audit_draw),
    repeat('0', 64), md5('r' || id) || md5('routed' || id)
FROM cases_case WHERE id BETWEEN {lo} AND {hi}"""


# --- The fixture: categories and people ----------------------------------------------------------------------

POLICY: dict[str, Any] = {"auto_threshold": 0.9, "review_threshold": 0.6, "auto_share": 80.0, "audit_rate": 0.05}
"""Every bench category's routing policy (the SQL-generated cases' route reasons and draws quote these figures)."""
SENSITIVE_POLICY: dict[str, Any] = {"sensitive_labels": [SENSITIVE_LABEL], "sensitive_rules": ["chargeback_history"]}


@dataclass(frozen=True)
class BenchCategory:
    category: Category
    model_version: ModelVersion
    queues: dict[str, Queue]  # kind -> queue, as create_category made them


def create_bench_category(*, slug: str, name: str, policy: dict[str, Any] | None = None) -> BenchCategory:
    """A live category (exception pattern) with `POLICY` and `policy` over it, its default queues, and
    `MODEL_LABEL` registered as its active model version; through the services, as the admin would."""
    # Imported here, as in every helper touching the apps: Django is configured at run time, from the command line.
    from cases.models import Queue
    from governance.services import create_category, parse_model_label, register_model_version

    category = create_category(
        user=None,
        slug=slug,
        name=name,
        pattern="exception",
        stage="live",
        policy={**POLICY, **(policy or {})},
        reason="bench",
    )
    model_name, version = parse_model_label(MODEL_LABEL)
    model_version = register_model_version(
        category=category, name=model_name, version=version, user=None, status="active", reason="bench"
    )
    queues = {q.kind: q for q in Queue.objects.filter(category=category)}
    return BenchCategory(category=category, model_version=model_version, queues=queues)


def create_integration_user() -> User:
    """The user cases are submitted as (not staff)."""
    from django.contrib.auth.models import User

    return User.objects.create_user(username=INTEGRATION_USER, email="integration@example.com")


def create_reviewer(username: str, *, queues: Iterable[Queue], groups: Iterable[Group] = ()) -> User:
    """A staff user who works these queues (guardian's cases.work_queue on each), in these role groups."""
    from django.contrib.auth.models import User
    from guardian.shortcuts import assign_perm

    user = User.objects.create_user(username=username, email=f"{username}@example.com", is_staff=True)
    groups = list(groups)
    if groups:
        user.groups.add(*groups)
    for queue in queues:
        assign_perm("cases.work_queue", user, queue)
    return user


# --- Generating data in SQL, and reading plans ---------------------------------------------------------------

# Each chain's head moved to its own last event: the generated events (seq from GENERATED_SEQ_BASE) come after
# the real ones, so every append afterwards continues its category's chain from there.
ADVANCE_CHAIN_HEADS = """
UPDATE governance_auditchainhead h SET seq = last.seq, hash = last.hash
FROM (SELECT DISTINCT ON (category_slug) category_slug, seq, hash FROM governance_auditevent
      ORDER BY category_slug, seq DESC) AS last
WHERE last.category_slug = h.chain AND last.seq > h.seq
"""


def generate_in_chunks(
    total: int, *, seed: int, steps: Callable[[int, int], Iterable[tuple[str, str]]], what: str
) -> dict[str, float]:
    """Run the named statements `steps(lo, hi)` (INSERT ... SELECT generate_series(lo, hi)) for the cases 1..total,
    CHUNK at a time, with a progress line per chunk; then set the cases' id sequence past them and advance the
    audit chain heads. random() is seeded per chunk, so a seed gives the same data. Returns the seconds per step."""
    from django.db import connection

    timings: dict[str, float] = {}
    start = time.perf_counter()
    with connection.cursor() as cursor:
        # For the load only, in this session: the measurements run with the server's settings.
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET work_mem = '64MB'")
        for chunk_no, lo in enumerate(range(1, total + 1, CHUNK)):
            hi = min(lo + CHUNK - 1, total)
            cursor.execute("SELECT setseed(%s)", [((seed + chunk_no) % 1000) / 1000.0])
            for step, sql in steps(lo, hi):
                t0 = time.perf_counter()
                cursor.execute(sql)
                timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0
            elapsed = time.perf_counter() - start
            rate = hi / elapsed
            print(
                f"  generated {hi:>9,}/{total:,} {what}  "
                f"({elapsed:.1f} s, {rate:,.0f} cases/s, ~{(total - hi) / rate:.0f} s left)",
                flush=True,
            )
        cursor.execute("RESET synchronous_commit")
        cursor.execute("RESET work_mem")
        cursor.execute("SELECT setval(pg_get_serial_sequence('cases_case', 'id'), %s)", [total])
        cursor.execute(ADVANCE_CHAIN_HEADS)
    return timings


def run_extra_sql(statements: Iterable[str]) -> dict[str, float]:
    """--extra-sql: each statement (a CREATE INDEX to try, say) run after generation, timed, with a line each."""
    from django.db import connection

    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        for statement in statements:
            t0 = time.perf_counter()
            cursor.execute(statement)
            seconds = time.perf_counter() - t0
            timings[f"extra_sql: {statement[:60]}"] = seconds
            print(f"  --extra-sql ({seconds:.1f} s): {statement}", flush=True)
    return timings


def row_counts(cursor: Any, tables: Iterable[str]) -> dict[str, int]:
    """How many rows each table holds (the benchmarks' own table names)."""
    counts: dict[str, int] = {}
    for table in tables:
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cursor.fetchone()[0]
    return counts


def database_size(cursor: Any) -> str:
    cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
    size: str = cursor.fetchone()[0]
    return size


def explain(sql: str, params: Any = None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back (the statement may lock rows, as claim-next's
    candidates and the sweep's overdue selection do)."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(r[0] for r in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def explain_queryset(queryset: QuerySet[Any]) -> dict[str, str]:
    """The statement the queryset runs (parameters inlined, for reading) and its plan."""
    from django.db import connection, transaction

    with transaction.atomic():  # Django compiles FOR UPDATE only inside one
        sql, params = queryset.query.sql_with_params()
    operations: Any = connection.ops  # compose_sql is PostgreSQL's, not in the base class the stubs know
    return {"sql": operations.compose_sql(sql, params), "plan": explain(sql, params)}


# --- Measurements ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-pct * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def latency_summary(
    ms: Iterable[float], percentiles: Iterable[int] = (50, 95, 99), digits: int = 2
) -> dict[str, float]:
    """Count, nearest-rank percentiles, max and mean of durations in milliseconds (at least one)."""
    values = sorted(ms)
    return {
        "count": len(values),
        **{f"p{pct}_ms": round(percentile(values, pct), digits) for pct in percentiles},
        "max_ms": round(values[-1], digits),
        "mean_ms": round(sum(values) / len(values), digits),
    }


def profile_text(profiler: cProfile.Profile, sort: str, limit: int) -> str:
    """The profile's top `limit` functions by `sort`, with paths relative to the project or to site-packages: short,
    and still saying which views.py is meant."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(limit)
    text = out.getvalue()
    for prefix in sorted({sysconfig.get_path("purelib"), sysconfig.get_path("stdlib"), str(ROOT)}, key=len)[::-1]:
        text = text.replace(prefix + os.sep, "")
    return text


# --- Where the time goes: SQL statements ----------------------------------------------------------------------

_SQL_PARAMS = re.compile(r"%s(?:, %s)+")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')


def sql_shape(sql: str) -> str:
    """The statement with its parameter lists and savepoint names collapsed, so repeats group together."""
    shape = _SAVEPOINT.sub('"<savepoint>"', _SQL_PARAMS.sub("%s, ...", sql))
    return re.sub(r"\s+", " ", shape)[:220]


@dataclass(frozen=True)
class Statement:
    """One statement executed: its SQL and parameters, and when it started and ended (time.perf_counter)."""

    sql: str
    params: Any
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class QueryLog:
    """An execute wrapper recording every statement and the time spent executing it: the round trip plus
    psycopg's adaptation. Transaction control (BEGIN, COMMIT) is not a statement and is not recorded. `t0` (when
    the log was made, or set by the caller) is where a timeline of the statements starts."""

    def __init__(self) -> None:
        self.entries: list[Statement] = []
        self.t0 = time.perf_counter()

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.entries.append(Statement(sql=sql, params=params, start=start, end=time.perf_counter()))

    @property
    def seconds(self) -> float:
        return sum(statement.seconds for statement in self.entries)

    def report(self) -> dict[str, Any]:
        groups: dict[str, list[float]] = {}
        for statement in self.entries:
            groups.setdefault(sql_shape(statement.sql), []).append(statement.seconds)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), -sum(kv[1])))
        return {
            "statements": len(self.entries),
            "sql_ms": round(self.seconds * 1000, 2),
            "by_shape": [{"count": len(t), "ms": round(sum(t) * 1000, 2), "sql": shape} for shape, t in ranked],
        }


@contextlib.contextmanager
def logged_queries() -> Iterator[QueryLog]:
    from django.db import connection

    log = QueryLog()
    with connection.execute_wrapper(log):
        yield log


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


# --- A process's memory --------------------------------------------------------------------------------------


def worker_pids(server: Server) -> list[int]:
    """The pids of the gunicorn workers (the master's children), in order; none once it has stopped."""
    import psutil

    if server.process is None or server.process.poll() is not None:
        return []
    try:
        return sorted(child.pid for child in psutil.Process(server.process.pid).children())
    except psutil.NoSuchProcess:
        return []


def rss_mib(pid: int) -> float | None:
    """The resident set of a process in MiB (psutil: VmRSS on Linux); None if it has exited."""
    import psutil

    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.NoSuchProcess:
        return None
