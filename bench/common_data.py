"""The benchmarks' data: its vocabulary (labels, rules, channels, texts...), SQL literals of the benchmarks' own
constants, the case.routed audit events intake records, the fixture made through the services (a live category
with its queues and active model version, the integration user, reviewers with their grants), and generating
cases in SQL chunk by chunk (`generate_in_chunks`), with the row counts and the database's size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User

    from cases.models import Queue
    from governance.models import Category, ModelVersion


# --- The generated data: what the cases say, and SQL literals -------------------------------------------------

MODEL_LABEL = "bench-model@1"  # every bench category's active model version, as a case names it
INTEGRATION_USER = "bench-integration"  # the user cases are submitted as
CHUNK = 100_000  # cases generated per INSERT ... SELECT generate_series
GENERATED_SEQ_BASE = 10_000_000  # generated audit events sit far above the real chains (category, model version)

SENSITIVE_LABEL = "fraud_suspected"
LABELS = ("shipping", "refund", "billing", "account", "cancellation", SENSITIVE_LABEL)
# The labels of plain reviews, no sensitive one (the sweep's cases, the KPIs' routine cases).
ROUTINE_LABELS = tuple(label for label in LABELS if label != SENSITIVE_LABEL)
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


# --- Generating data in SQL ----------------------------------------------------------------------------------

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
