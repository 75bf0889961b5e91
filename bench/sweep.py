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
import gc
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from common import (
    AUDIT_EVENT_INSERT,
    CHANNELS,
    GENERATED_SEQ_BASE,
    LABELS,
    SENSITIVE_LABEL,
    TEXTS,
    TIERS,
    BenchError,
    QueryLog,
    add_diagnosis_options,
    add_run_options,
    bench_parser,
    configure_django,
    create_bench_category,
    create_integration_user,
    create_reviewer,
    database_size,
    explain_queryset,
    generate_in_chunks,
    migrate,
    print_rows,
    profile_text,
    release,
    routed_events_sql,
    row,
    row_counts,
    run_extra_sql,
    run_main,
    run_record,
    save_results,
    scratch_databases,
    server_settings,
    size_label,
    sql_int_array,
    sql_interval,
    sql_shape,
    sql_text_array,
    verdict,
)

if TYPE_CHECKING:
    pass

CATEGORY_PREFIX = "bench-sweep"
REVIEWERS_PER_CATEGORY = 3

FULL_SHARE = 0.3  # of the cases waiting in a category, the rest are in its quick queue
CLAIMED_SHARE = 0.02  # of the cases not overdue: held under a live claim
URGENT_SHARE = 0.05
EXPIRED_CLAIM_SHARE = 0.1  # of the overdue: claimed, the claim expired
DUE_GAP = timedelta(minutes=30)  # a case not overdue is due at least this long after the anchor
PREVIOUS_SWEEP = timedelta(minutes=1)  # the warnings made "a minute ago", before the timed sweep
TOP_STATEMENTS = 8

# DESIGN.md "Budgets".
TARGET_SECONDS = 2.0
TARGET_IDLE_SECONDS = 0.2
BUDGET_OPEN = 1_000_000
BUDGET_OVERDUE = 10_000

PERMUTATION_PRIMES = (7919, 104_729, 1_299_709, 15_485_863)

# The sweep's cases are plain reviews: no sensitive label.
ROUTINE_LABELS = tuple(label for label in LABELS if label != SENSITIVE_LABEL)


# --- Sizes and the fixture ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """How many cases of each kind: overdue and free to move, overdue under a live claim, escalated and overdue
    with the breach already recorded, and the rest waiting (not overdue)."""

    open: int
    overdue: int
    held: int
    stale: int

    @classmethod
    def for_size(cls, open_cases: int, overdue: int) -> Mix:
        return cls(open=open_cases, overdue=overdue, held=overdue // 20, stale=overdue // 10)

    @property
    def waiting(self) -> int:
        return self.open - self.overdue - self.held - self.stale

    def prime(self) -> int:
        """A multiplier coprime to the size: i * p mod n is a permutation of the ids."""
        for p in PERMUTATION_PRIMES:
            if math.gcd(p, self.open) == 1:
                return p
        raise BenchError(f"--open {self.open}: no permutation prime fits; choose another size.")


@dataclass(frozen=True)
class Fixture:
    category_ids: list[int]
    category_slugs: list[str]
    model_version_ids: list[int]
    queues: dict[str, list[int]]  # kind -> one id per category, in category order
    slas: dict[str, timedelta]  # kind -> SLA (the same in every category: the defaults)
    integration_id: int
    reviewer_ids: list[int]


def create_fixture(categories: int) -> Fixture:
    """The categories (their default queues and an active model version each), the integration user, and three
    reviewers per category working its quick, full and escalation queues (the people the sweep notifies)."""
    from governance.history import system_user

    system_user()  # in production it exists after the first job run
    integration = create_integration_user()
    category_ids, slugs, versions, reviewers = [], [], [], []
    queues: dict[str, list[int]] = {}
    slas: dict[str, timedelta] = {}
    for c in range(1, categories + 1):
        bench = create_bench_category(slug=f"{CATEGORY_PREFIX}-{c}", name=f"Bench sweep {c}")
        for kind, queue in bench.queues.items():
            queues.setdefault(kind, []).append(queue.pk)
            slas[kind] = queue.sla
        worked = [bench.queues[kind] for kind in ("quick", "full", "escalation") if kind in bench.queues]
        for r in range(1, REVIEWERS_PER_CATEGORY + 1):
            reviewers.append(create_reviewer(f"bench-reviewer-{c}-{r}", queues=worked).pk)
        category_ids.append(bench.category.pk)
        slugs.append(bench.category.slug)
        versions.append(bench.model_version.pk)
    for kind in ("quick", "full", "escalation"):
        if kind not in queues:
            raise BenchError(f"create_category made no {kind} queue: the default queues changed?")
    return Fixture(
        category_ids=category_ids,
        category_slugs=slugs,
        model_version_ids=versions,
        queues=queues,
        slas=slas,
        integration_id=integration.pk,
        reviewer_ids=reviewers,
    )


# --- Data generation (SQL) ------------------------------------------------------------------------------------


def cases_sql(fx: Fixture, mix: Mix, anchor: datetime, lo: int, hi: int) -> str:
    """INSERT cases lo..hi (ids = row numbers), of the kind the permutation slot of each id says."""
    from cases.models import SLA_WARN_SHARE

    n, o, h, s = mix.open, mix.overdue, mix.held, mix.stale
    k = len(fx.category_ids)
    at = f"'{anchor.isoformat()}'::timestamptz"
    quick_sla, full_sla, esc_sla = (sql_interval(fx.slas[kind]) for kind in ("quick", "full", "escalation"))
    gap = sql_interval(DUE_GAP)
    reviewers = sql_int_array(fx.reviewer_ids)
    label = f"({sql_text_array(ROUTINE_LABELS)})[1 + (i / 3) % {len(ROUTINE_LABELS)}]"
    # When the case came near its breach (Queue.near_breach_after): SLA_WARN_SHARE of its SLA gone.
    near_breach = f"due - sla * (1 - {SLA_WARN_SHARE})"
    return f"""
WITH g AS MATERIALIZED (
    SELECT i, (i::bigint * {mix.prime()}) % {n} AS slot, 1 + i % {k} AS cat,
        random() AS r_kind, random() AS r_due, random() AS r_claim, random() AS r_prio, random() AS r_conf,
        random() AS r_cust
    FROM generate_series({lo}, {hi}) AS i
), c AS MATERIALIZED (
    SELECT g.*,
        CASE WHEN slot < {o} THEN 'overdue' WHEN slot < {o + h} THEN 'held' WHEN slot < {o + h + s} THEN 'stale'
             ELSE 'waiting' END AS cls,
        CASE WHEN slot >= {o + h} AND slot < {o + h + s} THEN 'escalation'
             WHEN r_kind < {FULL_SHARE} THEN 'full' ELSE 'quick' END AS kind
    FROM g
), d AS MATERIALIZED (
    SELECT c.*,
        CASE kind WHEN 'quick' THEN {quick_sla} WHEN 'full' THEN {full_sla} ELSE {esc_sla} END AS sla
    FROM c
), e AS MATERIALIZED (
    SELECT d.*,
        CASE cls
            WHEN 'waiting' THEN {at} + {gap} + r_due * (sla - {gap})
            WHEN 'stale' THEN {at} - interval '1 minute' - r_due * interval '6 hours'
            ELSE {at} - interval '1 minute' - r_due * interval '3 hours'
        END AS due,
        CASE cls
            WHEN 'overdue' THEN CASE WHEN r_claim < {EXPIRED_CLAIM_SHARE} THEN 'claimed' ELSE 'queued' END
            WHEN 'held' THEN 'claimed'
            WHEN 'stale' THEN 'escalated'
            ELSE CASE WHEN r_claim < {CLAIMED_SHARE} THEN 'claimed' ELSE 'queued' END
        END AS status,
        round((CASE kind WHEN 'quick' THEN 0.6 + r_conf * 0.3 ELSE 0.3 + r_conf * 0.3 END)::numeric, 4)::float8
            AS confidence,
        {label} AS label
    FROM d
)
INSERT INTO cases_case (
    id, category_id, external_id, input, output, confidence, model_version_id, rules_fired, value, segment,
    segment_key, customer_ref, priority, route, route_reasons, policy_version, audit_sampled, audit_draw, queue_id,
    due_at, claimed_by_id, claimed_until, status, final_output, audit_status, sla_warned_at, created_at, updated_at,
    decided_at)
SELECT
    i, ({sql_int_array(fx.category_ids)})[cat], 'sweep-' || lpad(i::text, 8, '0'),
    jsonb_build_object(
        'text', ({sql_text_array(TEXTS)})[1 + i % {len(TEXTS)}],
        'order_id', 'ORD-' || (100000 + (i::bigint * 7919) % 900000),
        'locale', 'en-GB', 'attachments', (i / 3) % 4),
    jsonb_build_object(
        'label', label, 'text', 'Classified as ' || label || '.',
        'reasoning', 'The message mentions ' || label || '-related terms.', 'score', confidence),
    confidence, ({sql_int_array(fx.model_version_ids)})[cat], '[]'::jsonb,
    CASE WHEN r_cust < 0.7 THEN round((r_cust * 400)::numeric, 2) END,
    jsonb_build_object('channel', ({sql_text_array(CHANNELS)})[1 + i % 4],
                       'tier', ({sql_text_array(TIERS)})[1 + (i / 4) % 4]),
    '{{"channel":"' || ({sql_text_array(CHANNELS)})[1 + i % 4]
        || '","tier":"' || ({sql_text_array(TIERS)})[1 + (i / 4) % 4] || '"}}',
    'cust-' || floor({max(n // 5, 100)} * r_cust * r_cust)::int,
    CASE WHEN cls = 'stale' OR r_prio < {URGENT_SHARE} THEN 'urgent' ELSE 'normal' END,
    CASE kind WHEN 'quick' THEN 'quick_review' ELSE 'full_review' END,
    jsonb_build_array('Confidence ' || confidence || ' is below the auto threshold 0.9.'),
    1, false, jsonb_build_object('ramp', jsonb_build_object('share', 80.0, 'draw', round(r_conf::numeric, 4))),
    CASE kind WHEN 'quick' THEN ({sql_int_array(fx.queues["quick"])})[cat]
              WHEN 'full' THEN ({sql_int_array(fx.queues["full"])})[cat]
              ELSE ({sql_int_array(fx.queues["escalation"])})[cat] END,
    due,
    CASE WHEN status = 'claimed' THEN ({reviewers})[1 + i % {len(fx.reviewer_ids)}] END,
    CASE WHEN status <> 'claimed' THEN NULL
         WHEN cls = 'overdue' THEN {at} - interval '1 minute' - r_claim * 10 * interval '30 minutes'
         WHEN cls = 'held' THEN {at} + interval '2 hours' + r_claim * interval '30 minutes'
         ELSE {at} + interval '10 minutes' + r_claim * 50 * interval '30 minutes' END,
    status, NULL, '',
    CASE WHEN {near_breach} < {at} - {sql_interval(PREVIOUS_SWEEP)} THEN {near_breach} END,
    due - sla, due - sla, NULL
FROM e
"""


def breaches_sql(fx: Fixture, lo: int, hi: int) -> str:
    """The stale escalated cases' breaches: in the escalation queue (recorded, the case stays: no next queue), and
    the earlier one in the quick queue that moved them there."""
    quick = sql_int_array(fx.queues["quick"])
    categories = sql_int_array(fx.category_ids)
    return f"""
INSERT INTO cases_slabreach (case_id, queue_id, due_at, detected_at, moved_to_id)
SELECT id, queue_id, due_at, due_at + interval '30 seconds', NULL
FROM cases_case WHERE id BETWEEN {lo} AND {hi} AND status = 'escalated'
UNION ALL
SELECT id, ({quick})[array_position({categories}, category_id::bigint)], created_at - interval '1 minute',
    created_at, queue_id
FROM cases_case WHERE id BETWEEN {lo} AND {hi} AND status = 'escalated'
"""


def history_sql(fx: Fixture, columns: str, lo: int, hi: int) -> str:
    return f"""
INSERT INTO cases_historicalcase ({columns}, history_date, history_change_reason, history_type, history_user_id)
SELECT {columns}, created_at, 'Submitted and routed', '+', {fx.integration_id}
FROM cases_case WHERE id BETWEEN {lo} AND {hi}
"""


def audit_events_sql(fx: Fixture, lo: int, hi: int) -> str:
    """case.routed for every case of the chunk, in its category's chain (seq: above the real chain)."""
    slugs = sql_text_array(fx.category_slugs)
    categories = sql_int_array(fx.category_ids)
    routed = routed_events_sql(
        seq=f"{GENERATED_SEQ_BASE} + id",
        integration_id=fx.integration_id,
        category_slug=f"({slugs})[array_position({categories}, category_id::bigint)]",
        status="'queued'",
        lo=lo,
        hi=hi,
    )
    return f"{AUDIT_EVENT_INSERT}\n{routed}"


def history_columns(cursor: Any) -> str:
    """The columns cases_case and its history table share (the history keeps every field but updated_at)."""
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cases_case' AND column_name IN "
        "(SELECT column_name FROM information_schema.columns WHERE table_name = 'cases_historicalcase') "
        "ORDER BY ordinal_position"
    )
    return ", ".join(f'"{name}"' for (name,) in cursor.fetchall())


def generate(fx: Fixture, mix: Mix, anchor: datetime, seed: int) -> dict[str, Any]:
    """Fill the scratch database in chunks of CHUNK cases (with their history rows and audit events)."""
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        columns = history_columns(cursor)
    timings = generate_in_chunks(
        mix.open,
        seed=seed,
        steps=lambda lo, hi: (
            ("cases", cases_sql(fx, mix, anchor, lo, hi)),
            ("breaches", breaches_sql(fx, lo, hi)),
            ("history", history_sql(fx, columns, lo, hi)),
            ("audit_events", audit_events_sql(fx, lo, hi)),
        ),
        what="open cases with history rows and audit events",
    )
    return {"seconds": round(time.perf_counter() - start, 1), "seconds_by_step": rounded(timings)}


def previous_sweep_warnings(fx: Fixture) -> int:
    """The warnings the sweep of a minute ago made (one UPDATE per queue, no notices): the timed sweep then has
    one minute's worth of cases to warn, however long generation took."""
    from django.utils import timezone

    from cases.models import Case, Queue

    then = timezone.now() - PREVIOUS_SWEEP
    worked = [pk for kind in ("quick", "full", "escalation") for pk in fx.queues[kind]]
    return sum(
        Case.objects.to_warn_in(queue, then).update(sla_warned_at=then) for queue in Queue.objects.filter(pk__in=worked)
    )


def prepare(args: argparse.Namespace, fx: Fixture) -> dict[str, Any]:
    """After generation: --extra-sql, VACUUM ANALYZE, the previous sweep's warnings, and the state counted."""
    from django.db import connection

    timings = run_extra_sql(args.extra_sql)
    with connection.cursor() as cursor:
        print("  VACUUM ANALYZE ...", flush=True)
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t0
        counts = row_counts(cursor, ("cases_case", "cases_historicalcase", "cases_slabreach", "governance_auditevent"))
        cursor.execute(
            "SELECT q.kind, c.status, count(*), count(*) FILTER (WHERE c.due_at < now()), "
            "count(*) FILTER (WHERE c.sla_warned_at IS NOT NULL) FROM cases_case c JOIN cases_queue q "
            "ON q.id = c.queue_id GROUP BY 1, 2 ORDER BY 1, 2"
        )
        by_queue_status = {
            f"{kind}/{status}": {"cases": n, "overdue": late, "warned": warned}
            for kind, status, n, late, warned in cursor.fetchall()
        }
        cursor.execute(
            "SELECT c.relname, count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = ANY(%s) GROUP BY 1 ORDER BY 1",
            [list(WRITTEN_TABLES)],
        )
        indexes = dict(cursor.fetchall())
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('cases_case'))")
        case_size = cursor.fetchone()[0]
        db_size = database_size(cursor)
    return {
        "seconds_by_step": rounded(timings),
        "rows": counts,
        "indexes_on_written_tables": indexes,
        "cases_by_queue_kind_and_status": by_queue_status,
        "cases_table_size": case_size,
        "database_size": db_size,
    }


def rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}


# --- Where the time goes --------------------------------------------------------------------------------------


# The sweep's steps, recognised by their SQL (first match wins); a statement's Python lead-in counts with it.
PHASES: tuple[tuple[str, str], ...] = (
    ("load queues", r'FROM "cases_queue"'),
    ("warn: UPDATE per queue", r'^UPDATE "cases_case" SET "sla_warned_at"'),
    ("overdue selection (FOR UPDATE SKIP LOCKED)", r"SKIP LOCKED"),
    ("system user", r'"auth_user"\."username" =|^INSERT INTO "auth_user"|^UPDATE "auth_user" SET "password"'),
    # The status is a CASE (open cases take the target's status, audits keep theirs), then the queue.
    ("move: UPDATE of the overdue cases", r'^UPDATE "cases_case" SET ("status" = (%s|CASE .*? END), )?"queue_id"'),
    ("SlaBreach bulk insert", r'^INSERT INTO "cases_slabreach"'),
    ("load moved cases (for history)", r'^SELECT .* FROM "cases_case" WHERE "cases_case"\."id" IN'),
    ("history bulk insert", r'^INSERT INTO "cases_historicalcase"'),
    ("audit events (record_many)", r'"governance_audit(event|chainhead)"'),
    ("webhook deliveries", r'"governance_webhook'),
    ("notifications (who works the queue, notices)", r"guardian_|auth_|django_content_type|_notification"),
    ("category of a next queue (on_commit notice)", r'FROM "governance_category"'),
    ("savepoints", r"SAVEPOINT"),
)


def phase_of(sql: str) -> str:
    for name, pattern in PHASES:
        if re.search(pattern, sql):
            return name
    return "other"


def breakdown(log: QueryLog, seconds: float) -> dict[str, Any]:
    """Time by phase (SQL, and the Python before each statement), by statement shape, and the slowest ones, over
    the `seconds` from `log.t0`."""
    phases: dict[str, dict[str, float]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    previous_end = log.t0
    statements: list[dict[str, Any]] = []
    for e in log.entries:
        sql_s, python_s = e.seconds, max(0.0, e.start - previous_end)
        previous_end = e.end
        name = phase_of(e.sql)
        p = phases.setdefault(name, {"statements": 0, "sql_ms": 0.0, "python_before_ms": 0.0})
        p["statements"] += 1
        p["sql_ms"] += sql_s * 1000
        p["python_before_ms"] += python_s * 1000
        shape = sql_shape(e.sql)
        s = shapes.setdefault(shape, {"count": 0, "ms": 0.0, "phase": name})
        s["count"] += 1
        s["ms"] += sql_s * 1000
        statements.append(
            {
                "ms": round(sql_s * 1000, 2),
                "python_before_ms": round(python_s * 1000, 2),
                "phase": name,
                "rows_in_params": count_params(e.params),
                "sql": shape,
            }
        )
    after = max(0.0, log.t0 + seconds - previous_end)
    if after > 0:
        phases["Python after the last statement (on_commit, result)"] = {
            "statements": 0,
            "sql_ms": 0.0,
            "python_before_ms": after * 1000,
        }
    sql_total = log.seconds
    return {
        "statements": len(log.entries),
        "sql_ms": round(sql_total * 1000, 1),
        "python_ms": round((seconds - sql_total) * 1000, 1),
        "phases": {
            k: {
                "statements": v["statements"],
                "sql_ms": round(v["sql_ms"], 1),
                "python_before_ms": round(v["python_before_ms"], 1),
                "total_ms": round(v["sql_ms"] + v["python_before_ms"], 1),
            }
            for k, v in phases.items()
        },
        "by_shape": sorted(
            ({"count": v["count"], "ms": round(v["ms"], 1), "phase": v["phase"], "sql": k} for k, v in shapes.items()),
            key=lambda s: -s["ms"],
        ),
        "slowest": sorted(statements, key=lambda s: -s["ms"])[:TOP_STATEMENTS],
    }


def count_params(params: Any) -> int:
    return len(params) if isinstance(params, list | tuple) else 0


def explain_before(fx: Fixture) -> list[dict[str, str]]:
    """The overdue selection as the sweep runs it, and the warning condition of the biggest queue."""
    from django.utils import timezone

    from cases.models import Case, Queue
    from cases.services.sla import overdue_unheld

    now = timezone.now()
    overdue = overdue_unheld(now).select_for_update(skip_locked=True, of=("self",))
    overdue = overdue.values("id", "queue_id", "due_at", "status", "audit_status")
    biggest = Queue.objects.get(pk=fx.queues["quick"][0])
    return [
        {"name": "overdue selection", **explain_queryset(overdue)},
        {
            "name": f"warning condition of {biggest.slug} (as a SELECT; the sweep runs it as an UPDATE)",
            **explain_queryset(Case.objects.to_warn_in(biggest, now).values("id")),
        },
    ]


# --- The sweep ------------------------------------------------------------------------------------------------

WRITTEN_TABLES = (
    "cases_case",
    "cases_historicalcase",
    "cases_slabreach",
    "governance_auditevent",
    "governance_auditchainhead",
    "governance_notification",
)


def rehearsal(profile_top: int) -> dict[str, Any]:
    """A sweep in a transaction rolled back, under cProfile (so slower than the timed one), then VACUUM of the
    tables it wrote: where the Python time goes, by function. Its on_commit notices never run."""
    import cProfile

    from django.db import connection, transaction

    from cases.services.sla import sweep

    profiler = cProfile.Profile()
    log = QueryLog()
    with transaction.atomic():
        with connection.execute_wrapper(log):
            log.t0 = time.perf_counter()
            profiler.enable()
            result = sweep()
            profiler.disable()
            seconds = time.perf_counter() - log.t0
        transaction.set_rollback(True)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE " + ", ".join(WRITTEN_TABLES))
    vacuum_s = time.perf_counter() - t0
    texts = {key: profile_text(profiler, key, profile_top) for key in ("tottime", "cumulative")}
    print(
        f"  rehearsal (rolled back, under cProfile): {seconds:.3f} s, {result.as_dict()['moved']} moved; "
        f"VACUUM afterwards {vacuum_s:.1f} s",
        flush=True,
    )
    return {
        "seconds_under_profile": round(seconds, 3),
        "result": result.as_dict(),
        "vacuum_seconds": round(vacuum_s, 1),
        **breakdown(log, seconds),
        "profile": texts,
    }


SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "synchronous_commit",
    "full_page_writes",
    "wal_compression",
    "jit",
)


def wal_stats() -> dict[str, int]:
    """The WAL position and the server's WAL counters (every session's writes, not only this one's). This
    backend's own counters are flushed first: pg_stat_force_next_flush() takes effect once it is idle."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, wal_records, wal_fpi FROM pg_stat_wal"
        )
        position, records, fpi = cursor.fetchone()
        return {"bytes": int(position), "records": int(records), "full_page_images": int(fpi)}


def wal_since(before: dict[str, int]) -> dict[str, int]:
    after = wal_stats()
    return {k: after[k] - before[k] for k in before}


def timed_sweep(now: datetime | None = None) -> tuple[Any, float, QueryLog, dict[str, int], float]:
    """One sweep() (at `now`, else the current time) with every statement recorded; and the WAL the server wrote
    meanwhile (read outside the timing; other sessions' writes count too, so it is an upper bound on a shared
    server); and the seconds this process spent collecting garbage during the sweep."""
    from django.db import connection

    from cases.services.sla import sweep

    log = QueryLog()
    wal = wal_stats()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        with connection.execute_wrapper(log):
            log.t0 = time.perf_counter()
            result = sweep(now=now)
            seconds = time.perf_counter() - log.t0
    finally:
        gc.callbacks.remove(pauses)
    return result, seconds, log, wal_since(wal), pauses.seconds


class GcPauses:
    """Time spent in Python's garbage collector (a gc callback): a sweep that makes 10,000 events and rows creates
    enough objects to trigger full collections, whose length depends on everything else this process holds."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def verify(
    fx: Fixture, mix: Mix, anchor: datetime, since: datetime, heads_before: dict[str, tuple[int, str]], result: Any
) -> dict[str, Any]:
    """What the first sweep wrote: one breach, history row and audit event per overdue case, every category's
    chain intact from its head before the sweep, the cases moved to escalation as urgent; the held and stale cases
    untouched."""
    from django.contrib.auth.models import User

    from cases.models import Case, SlaBreach
    from governance.choices import AuditKind
    from governance.events import GENESIS_HASH, compute_hash
    from governance.models import AuditEvent, Notification

    breaches = SlaBreach.objects.filter(detected_at__gte=since).count()
    history = Case.history.filter(history_date__gte=since, history_change_reason__startswith="SLA sweep").count()
    # One chain per category (governance.events): each must go on from its own head, link by link.
    events: list[AuditEvent] = []
    chain_ok = True
    for chain in sorted(set(heads_before) | set(chain_heads())):
        seq, prev_hash = heads_before.get(chain, (0, GENESIS_HASH))
        appended = list(AuditEvent.objects.filter(category_slug=chain, seq__gt=seq).order_by("seq"))
        for event in appended:
            if event.seq != seq + 1 or event.prev_hash != prev_hash or compute_hash(prev_hash, event) != event.hash:
                chain_ok = False
                break
            seq, prev_hash = event.seq, event.hash
        events += appended
    breach_events = sum(1 for e in events if e.kind == AuditKind.SLA_BREACHED)
    moved_now = Case.objects.filter(
        queue_id__in=fx.queues["escalation"],
        status="escalated",
        due_at__gt=anchor,
        priority="urgent",
        claimed_by__isnull=True,
    ).count()
    overdue_left = Case.objects.filter(
        status__in=("queued", "claimed"), due_at__lt=since, claimed_by__isnull=True
    ).count()
    held_left = Case.objects.filter(
        queue_id__in=fx.queues["quick"] + fx.queues["full"],
        status="claimed",
        due_at__lt=anchor,
        claimed_until__gt=since,
    ).count()
    stale_left = Case.objects.filter(
        queue_id__in=fx.queues["escalation"], status="escalated", due_at__lt=anchor
    ).count()
    notices = Notification.objects.filter(created_at__gte=since).count()
    checks = {
        "breaches_written": breaches,
        "history_rows_written": history,
        "audit_events_written": len(events),
        "sla_breached_events": breach_events,
        "audit_chain_links_and_hashes_ok": chain_ok,
        "moved_cases_now_urgent_in_escalation": moved_now,
        "overdue_unclaimed_left_in_quick_full": overdue_left,
        "held_overdue_left_with_their_reviewer": held_left,
        "stale_escalated_left_in_place": stale_left,
        "notifications_written": notices,
        "system_user_exists": User.objects.filter(username="system").exists(),
    }
    checks["ok"] = (
        result.moved == mix.overdue
        and result.breached == mix.overdue
        and breaches == history == breach_events == mix.overdue
        and chain_ok
        and moved_now == mix.overdue
        and overdue_left == 0
        and held_left == mix.held
        and stale_left == mix.stale
    )
    return checks


def chain_heads() -> dict[str, tuple[int, str]]:
    """Where each audit chain ends: chain -> (seq, hash)."""
    from governance.models import AuditChainHead

    return {chain: (seq, hash_) for chain, seq, hash_ in AuditChainHead.objects.values_list("chain", "seq", "hash")}


def run_sweeps(fx: Fixture, mix: Mix, anchor: datetime) -> dict[str, Any]:
    from django.utils import timezone

    heads = chain_heads()
    since = timezone.now()
    drift = since - anchor
    if drift >= DUE_GAP:
        raise BenchError(
            f"{drift} passed since the data's anchor: cases meant not to be overdue are. Generation too slow?"
        )
    print(f"Sweep 1: cases.services.sla.sweep() over {mix.open:,} open cases, {mix.overdue:,} overdue ...", flush=True)
    first, seconds, log, wal, gc_s = timed_sweep()
    print(f"  {seconds:.3f} s: {first.as_dict()}; {len(log.entries)} statements", flush=True)
    checks = verify(fx, mix, anchor, since, heads, first)
    print(f"  checks {'passed' if checks['ok'] else 'FAILED'}: {checks}", flush=True)
    print("Sweep 2: cases.services.sla.sweep() again ...", flush=True)
    second_at = timezone.now()
    second, seconds2, log2, wal2, gc2 = timed_sweep(second_at)
    print(f"  {seconds2:.3f} s: {second.as_dict()}; {len(log2.entries)} statements", flush=True)
    print("Sweep 3: at the second's instant, with nothing to do ...", flush=True)
    idle, seconds3, log3, wal3, gc3 = timed_sweep(second_at)
    print(f"  {seconds3:.3f} s: {idle.as_dict()}; {len(log3.entries)} statements", flush=True)
    return {
        "anchor": anchor.isoformat(),
        "minutes_from_anchor_to_sweep": round(drift.total_seconds() / 60, 2),
        "first": {
            "seconds": round(seconds, 4),
            "gc_ms": round(gc_s * 1000, 1),
            "wal": wal,
            "result": first.as_dict(),
            **breakdown(log, seconds),
            "checks": checks,
        },
        "second": {
            "seconds": round(seconds2, 4),
            "gc_ms": round(gc2 * 1000, 1),
            "wal": wal2,
            "result": second.as_dict(),
            **breakdown(log2, seconds2),
        },
        "idle": {
            "seconds": round(seconds3, 4),
            "gc_ms": round(gc3 * 1000, 1),
            "wal": wal3,
            "result": idle.as_dict(),
            **breakdown(log3, seconds3),
        },
    }


# --- Report ---------------------------------------------------------------------------------------------------


def table_rows(mix: Mix, data: dict[str, Any], sweeps: dict[str, Any]) -> list[dict[str, str]]:
    first, second, idle = sweeps["first"], sweeps["second"], sweeps["idle"]
    at_budget = mix.open >= BUDGET_OPEN and mix.overdue >= BUDGET_OVERDUE
    target = f"< {TARGET_SECONDS:g} s" + ("" if at_budget else " (budget at 1M/10k)")
    res = first["result"]
    return [
        row("data generation (cases, history, events)", f"{data['generation']['seconds']:.0f} s"),
        row("cases table / database size", f"{data['state']['cases_table_size']} / {data['state']['database_size']}"),
        row(
            f"sweep: {mix.open:,} open, {mix.overdue:,} overdue",
            f"{first['seconds']:.3f} s",
            target,
            verdict(first["seconds"] < TARGET_SECONDS),
        ),
        row(
            "sweep: moved / breached / warned",
            f"{res['moved']:,} / {res['breached']:,} / {res['warned']:,}",
            f"{mix.overdue:,} / {mix.overdue:,} / ~1 min",
            verdict(res["moved"] == res["breached"] == mix.overdue),
        ),
        row("sweep: SQL statements", str(first["statements"])),
        row(
            "sweep: WAL meanwhile (all sessions): size, full pages",
            f"{first['wal']['bytes'] / 1e6:.0f} MB, {first['wal']['full_page_images']:,} full-page images",
        ),
        row(
            "sweep: time in SQL / in Python (of which garbage collection)",
            f"{first['sql_ms'] / 1000:.3f} s / {first['python_ms'] / 1000:.3f} s ({first['gc_ms'] / 1000:.3f} s)",
        ),
        row(
            "sweep: writes checked (breaches, history, chain...)",
            "ok" if first["checks"]["ok"] else "FAILED",
            "all",
            verdict(first["checks"]["ok"]),
        ),
        row(
            "second sweep right after",
            f"{second['seconds']:.3f} s, {second['statements']} statements, moved {second['result']['moved']}, "
            f"breached {second['result']['breached']}, warned {second['result']['warned']}",
            "no move, no breach",
            verdict(second["result"]["moved"] == second["result"]["breached"] == 0),
        ),
        row(
            "sweep with nothing to do (third, at the second's instant)",
            f"{idle['seconds']:.3f} s, {idle['statements']} statements, "
            f"{sum(idle['result'][k] for k in ('moved', 'breached', 'warned'))} changes",
            f"< {TARGET_IDLE_SECONDS:g} s, none",
            verdict(
                idle["seconds"] < TARGET_IDLE_SECONDS
                and idle["result"]["moved"] == idle["result"]["breached"] == idle["result"]["warned"] == 0
            ),
        ),
    ]


def print_breakdown(first: dict[str, Any]) -> None:
    print("\nWhere the first sweep's time goes (each statement's Python lead-in counted with its phase):")
    width = max(len(k) for k in first["phases"])
    print(f"  {'phase'.ljust(width)}  stmts   SQL ms  Python ms  total ms")
    for name, p in sorted(first["phases"].items(), key=lambda kv: -kv[1]["total_ms"]):
        print(
            f"  {name.ljust(width)}  {p['statements']:>5}  {p['sql_ms']:>7.1f}  {p['python_before_ms']:>9.1f}  "
            f"{p['total_ms']:>8.1f}"
        )
    print(f"\nSlowest statements (of {first['statements']}):")
    for s in first["slowest"]:
        print(f"  {s['ms']:>8.1f} ms (Python before {s['python_before_ms']:.1f} ms) [{s['phase']}] {s['sql'][:150]}")


def print_explains(plans: list[dict[str, str]]) -> None:
    for plan in plans:
        print(f"\n--- EXPLAIN (ANALYZE, BUFFERS), {plan['name']} ---\n{plan['sql'][:700]}\n{plan['plan']}")


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
