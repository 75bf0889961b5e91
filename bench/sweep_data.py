"""bench/sweep.py's data, generated in SQL chunk by chunk: the open cases (a permutation of the ids spreads
their kinds over the table), the stale cases' earlier breaches, every case's history row and case.routed audit
event; then what the timed sweep starts from (--extra-sql, VACUUM ANALYZE, the state counted, and the warnings
the previous sweep made a minute ago).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from common_data import (
    AUDIT_EVENT_INSERT,
    CHANNELS,
    GENERATED_SEQ_BASE,
    ROUTINE_LABELS,
    TEXTS,
    TIERS,
    database_size,
    generate_in_chunks,
    routed_events_sql,
    row_counts,
    run_extra_sql,
    sql_int_array,
    sql_interval,
    sql_text_array,
)
from sweep_fixture import DUE_GAP, PREVIOUS_SWEEP, Fixture, Mix

FULL_SHARE = 0.3  # of the cases waiting in a category, the rest are in its quick queue
CLAIMED_SHARE = 0.02  # of the cases not overdue: held under a live claim
URGENT_SHARE = 0.05
EXPIRED_CLAIM_SHARE = 0.1  # of the overdue: claimed, the claim expired


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


# What the sweep writes: their indexes are counted here, and the rehearsal VACUUMs them.
WRITTEN_TABLES = (
    "cases_case",
    "cases_historicalcase",
    "cases_slabreach",
    "governance_auditevent",
    "governance_auditchainhead",
    "governance_notification",
)
