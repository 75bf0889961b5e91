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
import http.client
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
    row,
    run_main,
    run_record,
    save_results,
    scratch_databases,
    server_settings,
    sizes_parser,
    use_database,
    verdict,
)
from common_data import (
    CHANNELS,
    LABELS,
    LOCALES,
    MODEL_LABEL,
    SENSITIVE_LABEL,
    SENSITIVE_POLICY,
    TEXTS,
    TIERS,
    create_bench_category,
    create_reviewer,
    database_size,
    generate_in_chunks,
    row_counts,
    run_extra_sql,
    size_label,
    sql_int_array,
    sql_interval,
    sql_text_array,
)
from common_measure import QueryLog, explain, latency_summary, logged_queries, sql_shape
from common_server import HttpClient, Server

if TYPE_CHECKING:
    from governance.models import Category

CATEGORY_SLUG = "bench-metrics"
REVIEWERS = 12
MANAGERS = 2
OWNER = "bench-owner"
WINDOW = "30d"
API_URL = "/api/v1/metrics/{slug}/?window={window}"
DASHBOARD_URL = "/admin/metrics/dashboard/?category={slug}&window={window}"

# DESIGN.md "Budgets".
TARGET_KPI_SECONDS = 1.0
TARGET_PAGE_P95_MS = 1000.0
BUDGET_DECISIONS = 1_000_000
SLOW_STATEMENT_MS = 300.0  # a statement this slow is looked into (EXPLAIN printed), whatever the total
MIN_RUNS = 3  # timed runs (and MIN_REQUESTS requests) however long they take, before the time box may end them
MIN_REQUESTS = 5
PAGE_TIMEOUT_SECONDS = 120  # gunicorn's --timeout (common_server.Server); page statements are cancelled after it too

SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "jit",
    "jit_above_cost",
    "max_parallel_workers_per_gather",
)

# What the cases are: per route its share of the cases, and per outcome its share of the route's cases.
ROUTE_MIX: dict[str, tuple[float, dict[str, float]]] = {
    "auto": (0.30, {"auto": 0.918, "confirmed": 0.076, "flagged": 0.004, "audit_pending": 0.002}),
    "quick_review": (
        0.44,
        {"approved": 0.78, "corrected": 0.12, "rejected": 0.04, "escalated": 0.03, "breached": 0.02, "waiting": 0.01},
    ),
    "full_review": (
        0.23,
        {
            "approved": 0.65,
            "corrected": 0.18,
            "rejected": 0.07,
            "escalated": 0.06,
            "breached": 0.02,
            "waiting": 0.015,
            "waiting_escalated": 0.005,
        },
    ),
    "shadow": (0.03, {"approved": 0.80, "corrected": 0.18, "waiting": 0.02}),
}
# The decisions a case of each outcome carries: its verdict, an escalation before it, an audit.
DECISIONS_PER_OUTCOME = {
    "auto": 0,
    "confirmed": 1,
    "flagged": 1,
    "audit_pending": 0,
    "approved": 1,
    "corrected": 1,
    "rejected": 1,
    "escalated": 2,
    "breached": 1,
    "waiting": 0,
    "waiting_escalated": 1,
}
PERMUTATION_PRIMES = (1_299_709, 15_485_863, 104_729, 7919)

ROUTINE_LABELS = tuple(label for label in LABELS if label != SENSITIVE_LABEL)
ROUTINE_CUMULATIVE = (0.30, 0.55, 0.75, 0.90)  # of ROUTINE_LABELS, in order
SENSITIVE_SHARE_OF_FULL = 0.15
NOTES = (
    "Label matches the message.",
    "The customer asks for money back, not about delivery.",
    "Draft promised a refund we cannot give.",
    "Checked the order history first.",
)


# --- What the data is: a plan the SQL follows -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How many cases, and which ids are of which kind: a case's slot, (id * prime) mod cases, falls in one of
    the `bounds` (route, outcome, upper slot bound, in order), so each kind's count is exact and so is the number
    of decisions they carry."""

    cases: int
    prime: int
    bounds: tuple[tuple[str, str, int], ...]

    @classmethod
    def for_cases(cls, cases: int) -> Plan:
        bounds, cumulative = [], 0.0
        for route, (route_share, outcomes) in ROUTE_MIX.items():
            for outcome, share in outcomes.items():
                cumulative += route_share * share
                bounds.append((route, outcome, round(cumulative * cases)))
        route_last, outcome_last, _ = bounds[-1]
        bounds[-1] = (route_last, outcome_last, cases)  # the shares sum to 1; rounding never leaves a slot out
        prime = next((p for p in PERMUTATION_PRIMES if math.gcd(p, cases) == 1 and p % cases not in (0, 1)), None)
        if prime is None:
            raise BenchError(f"{cases} cases: no permutation prime fits; choose another size.")
        return cls(cases=cases, prime=prime, bounds=tuple(bounds))

    @classmethod
    def for_decisions(cls, decisions: int) -> Plan:
        """The fewest cases whose kinds carry at least `decisions` decisions (one more at most)."""
        per_case = sum(
            route_share * share * DECISIONS_PER_OUTCOME[outcome]
            for route_share, outcomes in ROUTE_MIX.values()
            for outcome, share in outcomes.items()
        )
        cases = max(int(decisions / per_case) - 50, 100)
        while cls.for_cases(cases).decisions < decisions:
            cases += 1
        return cls.for_cases(cases)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        low = 0
        for route, outcome, high in self.bounds:
            result[f"{route}/{outcome}"] = high - low
            low = high
        return result

    @property
    def decisions(self) -> int:
        return sum(n * DECISIONS_PER_OUTCOME[kind.split("/")[1]] for kind, n in self.counts().items())

    def slot(self, id_sql: str) -> str:
        return f"(({id_sql})::bigint * {self.prime}) % {self.cases}"

    def case_sql(self, id_sql: str, column: int) -> str:
        """A CASE over the slot of `id_sql` naming each id's route (column 0) or outcome (column 1)."""
        slot = self.slot(id_sql)
        whens = " ".join(f"WHEN {slot} < {high} THEN '{kind[column]}'" for *kind, high in self.bounds)
        return f"CASE {whens} END"


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    category_slug: str
    model_version_id: int
    queues: dict[str, int]  # kind -> id
    slas: dict[str, timedelta]  # kind -> SLA
    reviewer_ids: list[int]
    manager_ids: list[int]
    owner_id: int
    token: str


def create_fixture() -> Fixture:
    """The category with its queues and model version; reviewers, escalation managers, and the product owner whose
    token and session the API and dashboard requests use."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from governance.permissions import ESCALATION_MANAGER, PRODUCT_OWNER, REVIEWER

    bench = create_bench_category(slug=CATEGORY_SLUG, name="Bench metrics", policy=SENSITIVE_POLICY)
    q = bench.queues
    reviewer, manager, owner_group = (Group.objects.get(name=n) for n in (REVIEWER, ESCALATION_MANAGER, PRODUCT_OWNER))
    reviewers = [
        create_reviewer(f"bench-reviewer-{i:02d}", queues=[q["quick"], q["full"], q["audit"]], groups=[reviewer])
        for i in range(1, REVIEWERS + 1)
    ]
    managers = [
        create_reviewer(f"bench-manager-{i:02d}", queues=[q["escalation"], q["expert"]], groups=[manager])
        for i in range(1, MANAGERS + 1)
    ]
    owner = create_reviewer(OWNER, queues=[], groups=[owner_group])
    assign_perm("governance.change_category", owner, bench.category)
    return Fixture(
        category_id=bench.category.pk,
        category_slug=bench.category.slug,
        model_version_id=bench.model_version.pk,
        queues={kind: queue.pk for kind, queue in q.items()},
        slas={kind: queue.sla for kind, queue in q.items()},
        reviewer_ids=[u.pk for u in reviewers],
        manager_ids=[u.pk for u in managers],
        owner_id=owner.pk,
        token=Token.objects.create(user=owner).key,
    )


# --- Data generation (SQL) ------------------------------------------------------------------------------------


def cases_sql(fx: Fixture, plan: Plan, anchor: datetime, days: int, lo: int, hi: int) -> str:
    """INSERT the cases lo..hi (ids = row numbers), spread over `days` days up to 10 minutes before the anchor in
    id order; the waiting ones recent; the breached and escalated ones a little earlier, so that their longer way
    to a verdict ends before the anchor."""
    q, s = fx.queues, {kind: sql_interval(sla) for kind, sla in fx.slas.items()}
    at = f"'{anchor.isoformat()}'::timestamptz"
    span = f"(interval '{days} days' - interval '10 minutes')"
    routine = (
        "CASE "
        + " ".join(
            f"WHEN r_label < {c} THEN '{name}'" for name, c in zip(ROUTINE_LABELS, ROUTINE_CUMULATIVE, strict=False)
        )
        + f" ELSE '{ROUTINE_LABELS[-1]}' END"
    )
    first_sla = f"CASE route WHEN 'quick_review' THEN {s['quick']} ELSE {s['full']} END"
    return f"""
WITH g AS MATERIALIZED (
    SELECT i, random() AS r_time, random() AS r_conf, random() AS r_label, random() AS r_val, random() AS r_val2,
        random() AS r_cust, random() AS r_seg, random() AS r_took, random() AS r_took2, random() AS r_final,
        random() AS r_misc, random() AS r_rules
    FROM generate_series({lo}, {hi}) AS i
), k AS MATERIALIZED (
    SELECT g.*, {plan.case_sql("i", 0)} AS route, {plan.case_sql("i", 1)} AS outcome,
        {at} - interval '10 minutes' - ({plan.cases} - i + r_time) / {plan.cases} * {span} AS base,
        CASE WHEN r_label < {SENSITIVE_SHARE_OF_FULL} THEN '{SENSITIVE_LABEL}' ELSE {routine} END AS full_label,
        {routine} AS routine_label,
        (floor(r_seg * 16))::int AS seg
    FROM g
), d AS MATERIALIZED (
    SELECT k.*,
        CASE WHEN route = 'full_review' THEN full_label ELSE routine_label END AS label,
        CASE outcome
            WHEN 'waiting' THEN {at} - r_time * 0.7 * ({first_sla})
            WHEN 'waiting_escalated' THEN {at} - interval '1 hour' - r_time * interval '3 hours'
            WHEN 'audit_pending' THEN {at} - r_time * 0.9 * {s["audit"]}
            WHEN 'breached' THEN base - ({first_sla}) - interval '3 hours'
            WHEN 'escalated' THEN base - interval '12 hours'
            ELSE base END AS created,
        CASE
            WHEN outcome IN ('waiting', 'waiting_escalated') THEN CASE WHEN r_misc < 0.05 THEN 'claimed'
                 WHEN outcome = 'waiting' THEN 'queued' ELSE 'escalated' END
            WHEN route = 'auto' THEN 'auto_approved'
            WHEN outcome IN ('escalated', 'breached') THEN CASE WHEN r_final < 0.7 THEN 'approved'
                 WHEN r_final < 0.9 THEN 'corrected' ELSE 'rejected' END
            ELSE outcome END AS status,
        -- the queue the case is in now (or was decided in)
        CASE
            WHEN route = 'auto' THEN CASE WHEN outcome = 'auto' THEN NULL ELSE 'audit' END
            WHEN outcome = 'escalated' THEN CASE WHEN r_misc < 0.3 THEN 'expert' ELSE 'escalation' END
            WHEN outcome IN ('breached', 'waiting_escalated') THEN 'escalation'
            WHEN route = 'quick_review' THEN 'quick'
            ELSE 'full' END AS qkind
    FROM k
), e AS MATERIALIZED (
    SELECT d.*,
        round((CASE
            WHEN route = 'auto' THEN 0.9 + r_conf * 0.1
            WHEN route = 'quick_review' THEN 0.6 + r_conf * 0.3
            WHEN route = 'full_review' AND label = '{SENSITIVE_LABEL}' THEN 0.3 + r_conf * 0.7
            WHEN route = 'full_review' THEN 0.3 + r_conf * 0.3
            ELSE 0.3 + r_conf * 0.7 END)::numeric, 4)::float8 AS confidence,
        CASE qkind WHEN 'quick' THEN {s["quick"]} WHEN 'full' THEN {s["full"]} WHEN 'escalation' THEN {s["escalation"]}
                   WHEN 'expert' THEN {s["expert"]} WHEN 'audit' THEN {s["audit"]} END AS qsla,
        -- escalated: when the first reviewer escalated it; breached: when the sweep moved it on
        CASE outcome
            WHEN 'escalated' THEN created + interval '5 minutes' + r_took * r_took * interval '3 hours'
            WHEN 'waiting_escalated' THEN {at} - r_took * interval '50 minutes'
            WHEN 'breached' THEN created + ({first_sla}) + interval '30 seconds'
        END AS moved_at
    FROM d
), f AS MATERIALIZED (
    SELECT e.*,
        CASE
            WHEN status NOT IN ('approved', 'corrected', 'rejected') THEN CASE WHEN route = 'auto' THEN created END
            WHEN outcome = 'escalated' AND qkind = 'expert'
                THEN moved_at + interval '15 minutes' + r_took2 * r_took2 * interval '6 hours'
            WHEN outcome = 'escalated' THEN moved_at + interval '5 minutes' + r_took2 * r_took2 * interval '75 minutes'
            WHEN outcome = 'breached' THEN moved_at + interval '2 minutes' + r_took2 * r_took2 * interval '50 minutes'
            WHEN route = 'quick_review' THEN least({at} - r_misc * interval '1 minute',
                created + interval '1 minute' + r_took * r_took * interval '20 hours')
            ELSE least({at} - r_misc * interval '1 minute',
                created + interval '5 minutes' + r_took * r_took * interval '3.5 hours')
        END AS decided
    FROM e
)
INSERT INTO cases_case (
    id, category_id, external_id, input, output, confidence, model_version_id, rules_fired, value, segment,
    segment_key, customer_ref, priority, route, route_reasons, policy_version, audit_sampled, audit_draw, queue_id,
    due_at, claimed_by_id, claimed_until, status, final_output, audit_status, sla_warned_at, created_at, updated_at,
    decided_at)
SELECT
    i, {fx.category_id}, 'metrics-' || lpad(i::text, 8, '0'),
    jsonb_build_object(
        'text', ({sql_text_array(TEXTS)})[1 + i % {len(TEXTS)}],
        'order_id', 'ORD-' || (100000 + (i::bigint * 7919) % 900000),
        'locale', ({sql_text_array(LOCALES)})[1 + (i / 7) % {len(LOCALES)}]),
    jsonb_build_object('label', label, 'text', 'Classified as ' || label || '.', 'score', confidence),
    confidence, {fx.model_version_id},
    CASE WHEN r_rules < 0.15 THEN '["keyword_match"]'::jsonb WHEN r_rules < 0.22 THEN '["repeat_contact"]'::jsonb
         WHEN route = 'full_review' AND r_rules < 0.27 THEN '["chargeback_history"]'::jsonb ELSE '[]'::jsonb END,
    CASE WHEN r_val < 0.7 THEN least(round(exp(4.5 + 1.2 * sqrt(-2 * ln(greatest(r_val2, 1e-9)))
                                     * cos(2 * pi() * r_cust))::numeric, 2), 999999999.99) END,
    jsonb_build_object('channel', ({sql_text_array(CHANNELS)})[1 + seg % 4],
                       'tier', ({sql_text_array(TIERS)})[1 + seg / 4]),
    '{{"channel":"' || ({sql_text_array(CHANNELS)})[1 + seg % 4]
        || '","tier":"' || ({sql_text_array(TIERS)})[1 + seg / 4] || '"}}',
    'cust-' || floor({max(plan.cases // 5, 100)} * r_cust * r_cust)::int,
    CASE WHEN outcome = 'breached' OR i % 20 = 0 THEN 'urgent' ELSE 'normal' END,
    route,
    CASE route
        WHEN 'auto' THEN jsonb_build_array('Confidence ' || confidence || ' is at or above the auto threshold 0.9.')
        WHEN 'quick_review' THEN jsonb_build_array('Confidence ' || confidence || ' is below the auto threshold 0.9.')
        WHEN 'full_review' THEN jsonb_build_array(CASE WHEN label = '{SENSITIVE_LABEL}'
            THEN 'The predicted label is sensitive.' ELSE 'Confidence ' || confidence
            || ' is below the review threshold 0.6.' END)
        ELSE jsonb_build_array('The model version is in shadow: the case is reviewed blind.') END,
    1, route = 'auto' AND outcome <> 'auto',
    jsonb_build_object('ramp', jsonb_build_object('share', 80.0, 'draw', round(r_conf::numeric, 4)),
                       'audit', jsonb_build_object('rate', 0.05, 'draw', round(r_misc::numeric, 4))),
    CASE qkind WHEN 'quick' THEN {q["quick"]} WHEN 'full' THEN {q["full"]} WHEN 'escalation' THEN {q["escalation"]}
               WHEN 'expert' THEN {q["expert"]} WHEN 'audit' THEN {q["audit"]} END,
    CASE WHEN outcome IN ('escalated', 'waiting_escalated', 'breached') THEN moved_at + qsla
         ELSE created + qsla END,
    CASE WHEN status = 'claimed' THEN ({sql_int_array(fx.reviewer_ids)})[1 + i % {len(fx.reviewer_ids)}] END,
    CASE WHEN status = 'claimed' THEN {at} + r_took2 * interval '15 minutes' END,
    status,
    CASE WHEN status IN ('auto_approved', 'approved')
             THEN jsonb_build_object('label', label, 'text', 'Classified as ' || label || '.', 'score', confidence)
         WHEN status = 'corrected' THEN jsonb_build_object(
             'label', ({sql_text_array(LABELS)})[1 + (i / 5) % {len(LABELS)}], 'text', 'Corrected by a reviewer.')
    END,
    CASE outcome WHEN 'confirmed' THEN 'confirmed' WHEN 'flagged' THEN 'flagged' WHEN 'audit_pending' THEN 'pending'
                 ELSE '' END,
    NULL, created, coalesce(decided, created), decided
FROM f
"""


def decisions_sql(fx: Fixture, plan: Plan, anchor: datetime, lo: int, hi: int) -> str:
    """Every decision of the cases lo..hi: the escalation of an escalated case (when it was moved on), the verdict
    (approve, correct, reject; a batch approval without seconds spent), and the audit of an audited auto case."""
    at = f"'{anchor.isoformat()}'::timestamptz"
    reviewers, r = sql_int_array(fx.reviewer_ids), len(fx.reviewer_ids)
    managers, m = sql_int_array(fx.manager_ids), len(fx.manager_ids)
    notes = sql_text_array(NOTES)
    return f"""
WITH c AS MATERIALIZED (
    SELECT x.id, x.output, x.final_output, x.status, x.audit_status, x.created_at, x.decided_at, x.due_at,
        q.kind AS qkind, q.sla AS qsla, {plan.case_sql("x.id", 1)} AS outcome,
        random() AS r_sec, random() AS r_batch, random() AS r_when
    FROM cases_case x LEFT JOIN cases_queue q ON q.id = x.queue_id
    WHERE x.id BETWEEN {lo} AND {hi}
)
INSERT INTO reviews_decision (action, output_before, output_after, reason_code, notes, seconds_spent, batch_id,
    model_version, policy_version, created_at, actor_id, case_id)
SELECT 'escalate', output, NULL::jsonb,
    CASE WHEN qkind = 'expert' THEN 'needs_expert' WHEN id % 3 = 0 THEN 'high_risk' ELSE 'policy_legal' END,
    'Needs a second opinion.', (30 + r_sec * r_sec * 400)::int, NULL::uuid, '{MODEL_LABEL}', 1, due_at - qsla,
    ({reviewers})[1 + id % {r}], id
FROM c WHERE outcome IN ('escalated', 'waiting_escalated')
UNION ALL
SELECT CASE status WHEN 'approved' THEN 'approve' WHEN 'corrected' THEN 'correct' ELSE 'reject' END,
    output, CASE WHEN status <> 'rejected' THEN final_output END,
    CASE status WHEN 'approved' THEN '' WHEN 'rejected' THEN 'wrong_label'
                ELSE CASE WHEN id % 4 = 0 THEN 'bad_draft' ELSE 'wrong_label' END END,
    CASE WHEN status = 'approved' AND id % 3 <> 0 THEN '' ELSE ({notes})[1 + id % {len(NOTES)}] END,
    CASE WHEN status = 'approved' AND qkind = 'quick' AND r_batch < 0.1 THEN NULL
         WHEN qkind IN ('escalation', 'expert') THEN (60 + r_sec * r_sec * 900)::int
         WHEN qkind = 'quick' THEN (4 + r_sec * r_sec * 120)::int
         ELSE (30 + r_sec * r_sec * 600)::int END,
    CASE WHEN status = 'approved' AND qkind = 'quick' AND r_batch < 0.1 THEN md5('batch' || (id / 50))::uuid END,
    '{MODEL_LABEL}', 1, decided_at,
    CASE WHEN qkind IN ('escalation', 'expert') THEN ({managers})[1 + id % {m}]
         ELSE ({reviewers})[1 + (id * 7) % {r}] END,
    id
FROM c WHERE status IN ('approved', 'corrected', 'rejected')
UNION ALL
SELECT CASE audit_status WHEN 'confirmed' THEN 'confirm' ELSE 'flag' END, output,
    CASE WHEN audit_status = 'flagged'
         THEN output || '{{"label": "refund", "text": "Corrected by an auditor."}}'::jsonb END,
    CASE WHEN audit_status = 'flagged' THEN 'wrong_label' ELSE '' END, '',
    (10 + r_sec * r_sec * 120)::int, NULL::uuid, '{MODEL_LABEL}', 1,
    least({at} - r_when * interval '1 minute', created_at + interval '1 hour' + r_when * interval '40 hours'),
    ({reviewers})[1 + (id * 5) % {r}], id
FROM c WHERE audit_status IN ('confirmed', 'flagged')
"""


def breaches_sql(fx: Fixture, plan: Plan, lo: int, hi: int) -> str:
    """The SLA breaches: a breached case's in its first queue (moved to escalation), and an escalated case's that
    waited past the escalation queue's SLA (recorded there: no next queue)."""
    q, esc = fx.queues, sql_interval(fx.slas["escalation"])
    return f"""
WITH c AS MATERIALIZED (
    SELECT x.id, x.route, x.queue_id, x.due_at, x.decided_at, {plan.case_sql("x.id", 1)} AS outcome
    FROM cases_case x WHERE x.id BETWEEN {lo} AND {hi}
)
INSERT INTO cases_slabreach (case_id, queue_id, due_at, detected_at, moved_to_id)
SELECT id, CASE route WHEN 'quick_review' THEN {q["quick"]} ELSE {q["full"]} END,
    due_at - {esc} - interval '30 seconds', due_at - {esc}, queue_id
FROM c WHERE outcome = 'breached'
UNION ALL
SELECT id, queue_id, due_at, due_at + interval '30 seconds', NULL
FROM c WHERE outcome = 'escalated' AND queue_id = {q["escalation"]} AND decided_at > due_at + interval '30 seconds'
"""


def generate(fx: Fixture, plan: Plan, anchor: datetime, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the scratch database, check the decisions are the plan's, then VACUUM ANALYZE and --extra-sql."""
    from django.db import connection

    start = time.perf_counter()
    timings = generate_in_chunks(
        plan.cases,
        seed=args.seed,
        steps=lambda lo, hi: (
            ("cases", cases_sql(fx, plan, anchor, args.days, lo, hi)),
            ("decisions", decisions_sql(fx, plan, anchor, lo, hi)),
            ("breaches", breaches_sql(fx, plan, lo, hi)),
        ),
        what="cases with their decisions and breaches",
    )
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t0
        counts = row_counts(cursor, ("cases_case", "reviews_decision", "cases_slabreach"))
        cursor.execute("SELECT route, status, count(*) FROM cases_case GROUP BY 1, 2 ORDER BY 1, 2")
        by_route_status = {f"{route}/{status}": n for route, status, n in cursor.fetchall()}
        cursor.execute("SELECT action, count(*) FROM reviews_decision GROUP BY 1 ORDER BY 1")
        by_action = dict(cursor.fetchall())
        db_size = database_size(cursor)
    if counts["reviews_decision"] != plan.decisions:
        raise BenchError(f"Generated {counts['reviews_decision']:,} decisions, planned {plan.decisions:,}: a bug here.")
    if args.extra_sql:
        timings |= run_extra_sql(args.extra_sql)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    if args.db_setting:
        apply_db_settings(args.db_setting)
    seconds = time.perf_counter() - start
    print(
        f"  generated in {seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}); "
        f"{counts['cases_case']:,} cases, {counts['reviews_decision']:,} decisions, "
        f"{counts['cases_slabreach']:,} breaches; database {db_size}",
        flush=True,
    )
    return {
        "seconds": round(seconds, 1),
        "seconds_by_step": {k: round(v, 1) for k, v in timings.items()},
        "rows": counts,
        "cases_by_route_and_status": by_route_status,
        "decisions_by_action": by_action,
        "cases_by_kind_planned": plan.counts(),
        "database_size": db_size,
    }


def apply_db_settings(settings: list[tuple[str, str]]) -> None:
    """--db-setting: ALTER DATABASE <scratch> SET name = value, then new connections (this process's, gunicorn's)
    start with it: to try a server setting (jit, work_mem...) on the measurements only."""
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
        for setting, value in settings:
            cursor.execute(f'ALTER DATABASE "{name}" SET {setting} = %s', [value])
            print(f"  --db-setting: ALTER DATABASE {name} SET {setting} = {value!r}", flush=True)
    connections.close_all()


# --- The KPIs in this process ---------------------------------------------------------------------------------


def backfill_snapshots(args: argparse.Namespace) -> dict[str, Any]:
    """Store every past hour's snapshot, as the hourly `snapshot_metrics` job would have on a site that ran it all
    along (the KPIs of a long window sum them; `--no-snapshots` measures the live reading instead)."""
    from django.db import connection

    from metrics.services.snapshots import snapshot_metrics

    hours = args.days * 24 + 1
    print(f"  snapshotting {hours:,} past hours (the hourly job's backfill) ...", flush=True)
    start = time.perf_counter()
    result = snapshot_metrics(catch_up_hours=hours)
    seconds = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metrics_metricsnapshot")
    print(f"  {result['written']:,} snapshot hours in {seconds:.1f} s ({seconds / hours * 1000:.0f} ms an hour)")
    return {"hours": result["written"], "seconds": round(seconds, 1), "ms_per_hour": round(seconds / hours * 1000)}


def kpi_pieces(category: Category, window: Any, now: datetime) -> dict[str, Callable[[], object]]:
    """The public pieces `category_kpis` is made of, each callable alone (their statements get a name)."""
    from metrics import kpis

    return {
        "case_counts": lambda: kpis.case_counts(category, window),
        "decision_counts": lambda: kpis.decision_counts(category, window),
        "confidence_histograms": lambda: kpis.confidence_histograms(category, window),
        "resolution": lambda: kpis.resolution(category, window),
        "reviewers": lambda: kpis.reviewers(category, window),
        "review_seconds": lambda: kpis.review_seconds(category, window),
        "sla_breaches": lambda: kpis.sla_breaches(category, window),
        "queues": lambda: kpis.queues(category, now),
        "sensitive_label_rates": lambda: kpis.sensitive_label_rates(category, window),
        "fairness": lambda: kpis.fairness(category, window),
        "threshold_advisor": lambda: kpis.threshold_advisor(category, window, review_seconds_per_case=None),
    }


def timed_runs(call: Callable[[], object], runs: int, box: float) -> tuple[list[float], list[QueryLog]]:
    """`runs` timed calls, each with its statements logged; fewer (at least MIN_RUNS) once `box` seconds have
    gone, so that a size far over its budget still ends in reasonable time."""
    seconds: list[float] = []
    logs: list[QueryLog] = []
    start = time.perf_counter()
    while len(seconds) < runs and (len(seconds) < MIN_RUNS or time.perf_counter() - start < box):
        with logged_queries() as log:
            t0 = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - t0)
        logs.append(log)
    return seconds, logs


def readable(sql: str, params: Any) -> str:
    """The statement with its parameters inlined, for reading (and for EXPLAIN by hand)."""
    from django.db import connection

    operations: Any = connection.ops  # compose_sql is PostgreSQL's, not in the base class the stubs know
    return str(operations.compose_sql(sql, params))


def measure_kpis(fx: Fixture, args: argparse.Namespace) -> dict[str, Any]:
    """category_kpis over the window: a warm-up, then --runs timed; then each piece alone; then the slowest
    statements of the median run, named after their piece, with their plans."""
    from django.utils import timezone

    from governance.models import Category
    from metrics.kpis import Window, category_kpis

    category = Category.objects.select_related("policy").get(pk=fx.category_id)
    window = Window.last(args.window)  # one window for every run: the same rows each time
    now = timezone.now()
    print(f"category_kpis({CATEGORY_SLUG}, {args.window}): a warm-up, then {args.runs} runs ...", flush=True)
    t0 = time.perf_counter()
    figures = category_kpis(category, window, now=now)
    warmup = time.perf_counter() - t0
    seconds, logs = timed_runs(lambda: category_kpis(category, window, now=now), args.runs, args.time_box)
    median_index = sorted(range(len(seconds)), key=lambda k: seconds[k])[len(seconds) // 2]
    log = logs[median_index]
    print(
        f"  warm-up {warmup * 1000:.0f} ms; runs {', '.join(f'{s * 1000:.0f}' for s in seconds)} ms; "
        f"{len(log.entries)} statements",
        flush=True,
    )
    pieces: dict[str, Any] = {}
    piece_of: dict[str, str] = {}
    calls = kpi_pieces(category, window, now)
    for name, call in calls.items():
        piece_seconds, piece_logs = timed_runs(call, args.runs, args.time_box / len(calls))
        for entry in piece_logs[0].entries:
            piece_of.setdefault(sql_shape(entry.sql), name)
        pieces[name] = {
            "median_ms": round(statistics.median(piece_seconds) * 1000, 1),
            "runs": len(piece_seconds),
            "sql_ms": round(statistics.median(p.seconds for p in piece_logs) * 1000, 1),
            "statements": len(piece_logs[0].entries),
        }
    slowest = sorted(log.entries, key=lambda e: -e.seconds)
    top = [e for k, e in enumerate(slowest) if k < args.explain_top or e.seconds * 1000 > SLOW_STATEMENT_MS]
    print(f"  EXPLAIN ANALYZE of the {len(top)} slowest statements ...", flush=True)
    statements = [
        {
            "ms": round(e.seconds * 1000, 1),
            "piece": piece_of.get(sql_shape(e.sql), "(other)"),
            "sql": readable(e.sql, e.params),
            "plan": explain(e.sql, e.params),
        }
        for e in top
    ]
    return {
        "window": window.as_dict(),
        "warmup_ms": round(warmup * 1000, 1),
        "runs_ms": [round(s * 1000, 1) for s in seconds],
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "statements": len(log.entries),
        "statements_per_run": sorted({len(x.entries) for x in logs}),
        "sql_ms_of_median_run": round(log.seconds * 1000, 1),
        "pieces": pieces,
        "every_statement_of_median_run": [
            {"ms": round(e.seconds * 1000, 2), "piece": piece_of.get(sql_shape(e.sql), "(other)")} for e in log.entries
        ],
        "slowest_statements": statements,
        "figures": headline(figures),
    }


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures that say the data is what it should be (the rest is in the API's answer)."""
    keys = ("volume", "routes", "auto_rate", "override_rate", "escalation_rate", "sla_breach_rate")
    return {
        **{k: figures[k] for k in keys},
        "resolution_minutes": figures["resolution_minutes"],
        "review_seconds": figures["review_seconds"],
        "audited_accuracy_n": figures["audited_accuracy"]["n"],
        "shadow_agreement_n": figures["shadow_agreement"]["n"],
        "reviewers": len(figures["reviewers"]),
        "fairness_keys": sorted(figures["fairness"]),
        "drift_psi": figures["drift_psi"],
    }


# --- Pages: through gunicorn, and their queries in this process -----------------------------------------------


def get_in_process(client: Any, path: str) -> dict[str, Any]:
    """One GET with Django's test client: its status, SQL statements and time. A request that raises (a statement
    cancelled by the timeout, say) is an answer too, status 500: a page that fails is measured as failing."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    log = QueryLog()
    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(log):
        t0 = time.perf_counter()
        try:
            response = client.get(path)
            status, body = response.status_code, response.content
        except Exception as exc:  # reported as the page's answer, and the run goes on
            status, body = 500, f"{type(exc).__name__}: {exc}".encode()
        elapsed = time.perf_counter() - t0
    slowest = sorted(log.entries, key=lambda e: -e.seconds)[:3]
    return {
        "status": status,
        "queries": len(ctx.captured_queries),
        "total_ms": round(elapsed * 1000, 1),
        "sql_ms": round(log.seconds * 1000, 1),
        "slowest_statements": [{"ms": round(e.seconds * 1000, 1), "sql": sql_shape(e.sql)} for e in slowest],
        "body": body,
    }


def in_process(client: Any, path: str, box: float) -> dict[str, Any]:
    """The page's SQL statements and time in this process: a first GET (cold caches, one-off lookups), then a second,
    the figure; only the first when it failed or took longer than the time box. Statements are cancelled after
    PAGE_TIMEOUT_SECONDS, as gunicorn's worker would be."""
    import logging

    from django.db import connection

    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.CRITICAL)  # a 404 of a page not merged yet is not this benchmark's output
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [f"{PAGE_TIMEOUT_SECONDS}s"])
    try:
        first = get_in_process(client, path)
        if first["status"] != 200 or first["total_ms"] > box * 1000:
            return {**first, "cold": True}
        return {**get_in_process(client, path), "cold": False, "first_ms": first["total_ms"]}
    finally:
        request_log.setLevel(level)
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


def over_http(name: str, client: HttpClient, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """--warmup then --requests sequential GETs: round trips in ms, p50/p95/max. An answer other than 200, or none
    (gunicorn's worker timed out), ends the series with an error."""
    ms: list[float] = []
    sizes: list[int] = []
    result: dict[str, Any] = {"path": path, "requests_planned": args.requests}
    start = time.perf_counter()
    for k in range(-args.warmup, args.requests):
        if k >= MIN_REQUESTS and time.perf_counter() - start > args.time_box:
            print(f"  {name}: time box of {args.time_box:g} s reached after {k} requests", flush=True)
            break
        if k == 0:
            client.closed_by_server = 0
            start = time.perf_counter()
        try:
            status, data, seconds = client.get(path)
        except (OSError, http.client.HTTPException) as exc:
            result["error"] = f"no answer ({type(exc).__name__}: {exc}); gunicorn's timeout is {PAGE_TIMEOUT_SECONDS} s"
            break
        if status != 200:
            result["error"] = f"status {status}: {data[:200]!r}"
            break
        if k < 0:
            continue
        ms.append(seconds * 1000)
        sizes.append(len(data))
        if (k + 1) % 10 == 0:
            so_far = latency_summary(ms, (50, 95))
            print(f"  {name}: {k + 1}/{args.requests}  p50 {so_far['p50_ms']:.0f} ms, p95 {so_far['p95_ms']:.0f} ms")
    if "error" in result:
        print(f"  {name} through gunicorn: {result['error']}", flush=True)
        client.close()
    if ms:
        result |= {
            **latency_summary(ms, (50, 95), digits=1),
            "response_kib": round(sum(sizes) / len(sizes) / 1024, 1),
            "closed_by_server": client.closed_by_server,
        }
    return result


def measure_pages(fx: Fixture, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """The API endpoint, and the dashboard page if this build has it."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    fields = {"slug": fx.category_slug, "window": args.window}
    api_path, dashboard_path = args.api_url.format(**fields), args.dashboard_url.format(**fields)

    api_client = Client(HTTP_AUTHORIZATION=f"Token {fx.token}", HTTP_HOST="127.0.0.1")
    api_local = in_process(api_client, api_path, args.time_box)
    body = api_local.pop("body")
    if api_local["status"] != 200:
        raise BenchError(f"GET {api_path} answered {api_local['status']} in this process: {body[:300]!r}")
    answer = json.loads(body)
    print(
        f"GET {api_path}: {api_local['queries']} queries in this process ({api_local['total_ms']:.0f} ms); "
        f"through gunicorn: {args.warmup} warm-up, {args.requests} timed ...",
        flush=True,
    )
    api = {"in_process": api_local, **over_http("API", HttpClient(server.port, fx.token), api_path, args)}
    api["answer"] = {"volume": answer.get("volume"), "keys": sorted(answer)}

    page_client = Client(HTTP_HOST="127.0.0.1")
    page_client.force_login(User.objects.get(pk=fx.owner_id))
    print(f"GET {dashboard_path} in this process ...", flush=True)
    page_local = in_process(page_client, dashboard_path, args.time_box)
    body = page_local.pop("body")
    dashboard: dict[str, Any] = {"path": dashboard_path, "in_process": page_local}
    if page_local["status"] == 404:
        print(
            "  it answers 404: the dashboard page is not in this build yet. Skipped; re-run this benchmark once it "
            "is merged.",
            flush=True,
        )
        return {"api": api, "dashboard": {**dashboard, "skipped": "404: the dashboard page is not in this build"}}
    if page_local["status"] != 200:
        answer = body.decode(errors="replace")[:300]
        error = f"status {page_local['status']} after {page_local['total_ms'] / 1000:.0f} s: {answer}"
        worst = page_local["slowest_statements"][0] if page_local["slowest_statements"] else None
        print(f"  a failure: {error}", flush=True)
        if worst:
            print(f"  its slowest statement ({worst['ms'] / 1000:.0f} s): {worst['sql']}", flush=True)
        return {"api": api, "dashboard": {**dashboard, "error": error}}
    cold = " (one cold request: it took longer than the time box)" if page_local["cold"] else ""
    print(
        f"  {page_local['queries']} queries ({page_local['total_ms']:.0f} ms){cold}; through gunicorn: "
        f"{args.warmup} warm-up, {args.requests} timed ...",
        flush=True,
    )
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={page_client.cookies[settings.SESSION_COOKIE_NAME].value}"}
    page_http = HttpClient(server.port, None, headers={"Accept": "text/html", **cookie})
    dashboard |= over_http("dashboard", page_http, dashboard_path, args)
    return {"api": api, "dashboard": dashboard}


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


# --- Report ---------------------------------------------------------------------------------------------------


def page_rows(title: str, page: dict[str, Any], note: str) -> list[dict[str, str]]:
    """A page's round trips through gunicorn against the target, and its queries in this process."""
    target = f"p95 < {TARGET_PAGE_P95_MS:g} ms{note}"
    local = page["in_process"]
    if "skipped" in page:
        return [row(f"{title} over gunicorn", "not measured: 404, not in this build yet", target, "SKIP")]
    cold = ", one cold request" if local.get("cold") else ""
    rows = [
        row(f"{title}: SQL queries / time in this process{cold}", f"{local['queries']} / {local['total_ms']:.0f} ms")
    ]
    if "count" in page:
        outcome = "MISS" if "error" in page else verdict(page["p95_ms"] < TARGET_PAGE_P95_MS)
        value = f"{page['p50_ms']:.0f} / {page['p95_ms']:.0f} / {page['max_ms']:.0f} ms"
        rows.insert(0, row(f"{title} over gunicorn, {page['count']} requests: p50 / p95 / max", value, target, outcome))
    if "error" in page:
        rows.insert(0, row(f"{title} over gunicorn", page["error"][:90], target, "MISS"))
    return rows


def table_rows(sizes: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for result in sizes:
        tag = f"[{result['decisions']:,} decisions]"
        note = "" if result["decisions"] >= BUDGET_DECISIONS else " (budget at 1M)"
        k, api, page = result["kpis"], result["api"], result["dashboard"]
        gen = result["generation"]
        rows.append(
            row(
                f"{tag} data: cases / decisions in the {k['window']['name']} window / generation",
                f"{result['cases']:,} / {result['decisions_in_window']:,} / {gen['seconds']:.0f} s "
                f"({gen['database_size']})",
            )
        )
        rows.append(
            row(
                f"{tag} category_kpis({k['window']['name']}): median of {len(k['runs_ms'])} (min-max)",
                f"{k['median_ms']:.0f} ms ({min(k['runs_ms']):.0f}-{max(k['runs_ms']):.0f})",
                f"< {TARGET_KPI_SECONDS * 1000:g} ms{note}",
                verdict(k["median_ms"] < TARGET_KPI_SECONDS * 1000),
            )
        )
        slowest = k["slowest_statements"][0]
        rows.append(
            row(
                f"{tag} category_kpis: statements / time in SQL / slowest",
                f"{k['statements']} / {k['sql_ms_of_median_run']:.0f} ms / {slowest['ms']:.0f} ms ({slowest['piece']})",
            )
        )
        rows += page_rows(f"{tag} API", api, note)
        rows += page_rows(f"{tag} dashboard", page, note)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        span = f"{small['decisions']:,} vs {large['decisions']:,}"
        counts = [
            ("category_kpis statements", small["kpis"]["statements"], large["kpis"]["statements"]),
            ("API queries", small["api"]["in_process"]["queries"], large["api"]["in_process"]["queries"]),
        ]
        pages = [s["dashboard"] for s in (small, large)]
        if any("skipped" in p for p in pages):
            rows.append(row(f"dashboard queries, {span}", "not measured: 404, not in this build yet", "equal", "SKIP"))
        elif any(p["in_process"]["status"] != 200 for p in pages):
            rows.append(row(f"dashboard queries, {span}", "the page failed at a size", "equal", "MISS"))
        else:
            counts.append(("dashboard queries", *(p["in_process"]["queries"] for p in pages)))
        for name, a, b in counts:
            rows.append(row(f"{name}, {span}", f"{a} / {b}", "equal", verdict(a == b)))
    return rows


def print_details(sizes: list[dict[str, Any]], *, explain_all: bool, missed: bool) -> None:
    for result in sizes:
        k = result["kpis"]
        print(f"\n[{result['decisions']:,} decisions] each piece of metrics.kpis alone (median of its runs):")
        print(f"  {'piece'.ljust(24)} stmts  runs  total ms   SQL ms")
        for name, p in sorted(k["pieces"].items(), key=lambda kv: -kv[1]["median_ms"]):
            print(
                f"  {name.ljust(24)} {p['statements']:>5}  {p['runs']:>4}  {p['median_ms']:>8.1f}  {p['sql_ms']:>7.1f}"
            )
        print(
            f"  sum {sum(p['median_ms'] for p in k['pieces'].values()):.0f} ms; category_kpis {k['median_ms']:.0f} ms"
        )
        print(f"  slowest statements of the median run: {[(s['ms'], s['piece']) for s in k['slowest_statements']]}")
        for s in k["slowest_statements"]:
            if explain_all or missed or s["ms"] > SLOW_STATEMENT_MS:
                print(f"\n--- EXPLAIN (ANALYZE, BUFFERS), {s['piece']}: {s['ms']:.0f} ms ---")
                print(f"{s['sql'][:900]}\n{s['plan']}")


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
