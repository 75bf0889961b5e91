"""bench/kpis.py's data, generated in SQL chunk by chunk as the `Plan` says: the cases over the days before
the anchor, their decisions (escalations, verdicts, audits) and SLA breaches; then the check that the decisions
are the plan's, VACUUM ANALYZE, --extra-sql and --db-setting.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from common import BenchError
from common_data import (
    CHANNELS,
    LABELS,
    LOCALES,
    MODEL_LABEL,
    ROUTINE_LABELS,
    SENSITIVE_LABEL,
    TEXTS,
    TIERS,
    database_size,
    generate_in_chunks,
    row_counts,
    run_extra_sql,
    sql_int_array,
    sql_interval,
    sql_text_array,
)
from kpis_fixture import Fixture, Plan

ROUTINE_CUMULATIVE = (0.30, 0.55, 0.75, 0.90)  # of ROUTINE_LABELS, in order
SENSITIVE_SHARE_OF_FULL = 0.15
NOTES = (
    "Label matches the message.",
    "The customer asks for money back, not about delivery.",
    "Draft promised a refund we cannot give.",
    "Checked the order history first.",
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
