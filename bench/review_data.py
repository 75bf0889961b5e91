"""bench/review.py's data, generated in SQL (``INSERT ... SELECT generate_series``, chunk by chunk): the
cases with their production-like distributions and backlog, and what intake and the reviewers' decisions would
have written with them (history rows, decisions, audit events); then ANALYZE and the row counts.
"""

from __future__ import annotations

import time
from typing import Any

from common_data import (
    AUDIT_EVENT_INSERT,
    CHANNELS,
    GENERATED_SEQ_BASE,
    LABELS,
    LOCALES,
    MODEL_LABEL,
    REGIONS,
    RULES,
    TEXTS,
    TIERS,
    database_size,
    generate_in_chunks,
    routed_events_sql,
    row_counts,
    sql_int_array,
    sql_text_array,
)
from review_fixture import Backlog, Fixture

LABEL_CUMULATIVE = (0.30, 0.55, 0.75, 0.90, 0.98)  # of LABELS, in order
NOTES = (
    "Label matches the message.",
    "The customer asks for money back, not about delivery.",
    "Duplicate of an earlier contact; nothing to do.",
    "Draft promised a refund we cannot give.",
    "Checked the order history before approving.",
)


# --- Data generation (SQL) ------------------------------------------------------------------------------------


def cases_sql(fx: Fixture, n: int, backlog: Backlog, lo: int, hi: int) -> str:
    """INSERT cases lo..hi (ids = row numbers). Rows above `recent_from` are the last 30 hours: every other one
    waits in a queue (a permutation spreads the queue kinds over them), the others were decided or auto-approved.
    Rows up to `recent_from` are the history, spread over the 180 days before that."""
    q = fx.queues
    recent_from = n - 2 * backlog.total
    wq, wf, we, wx = backlog.quick, backlog.full, backlog.escalation, backlog.expert
    customers = max(n // 5, 100)
    reviewers = sql_int_array(fx.historic_reviewer_ids)
    label = (
        "CASE "
        + " ".join(f"WHEN r_label < {c} THEN '{name}'" for name, c in zip(LABELS, LABEL_CUMULATIVE, strict=False))
        + f" ELSE '{LABELS[-1]}' END"
    )
    return f"""
WITH g AS MATERIALIZED (
    SELECT i,
        CASE WHEN i > {recent_from} AND (i - {recent_from}) % 2 = 0
             THEN (((i - {recent_from}) / 2 - 1)::bigint * 7919) % {backlog.total} END AS slot,
        random() AS r_route, random() AS r_status, random() AS r_time, random() AS r_label, random() AS r_conf,
        random() AS r_val, random() AS r_val2, random() AS r_seg, random() AS r_cust, random() AS r_misc,
        random() AS r_prio, random() AS r_rules, random() AS r_decide
    FROM generate_series({lo}, {hi}) AS i
), k AS MATERIALIZED (
    SELECT g.*,
        CASE WHEN slot IS NULL THEN NULL
             WHEN slot < {wq} THEN 'quick' WHEN slot < {wq + wf} THEN 'full'
             WHEN slot < {wq + wf + we} THEN 'escalation' WHEN slot < {wq + wf + we + wx} THEN 'expert'
             ELSE 'audit' END AS wkind,
        {label} AS label
    FROM g
), r AS MATERIALIZED (
    SELECT k.*,
        CASE wkind
            WHEN 'quick' THEN 'quick_review'
            WHEN 'full' THEN CASE WHEN r_route < 0.85 THEN 'full_review' ELSE 'shadow' END
            WHEN 'escalation' THEN CASE WHEN r_route < 0.6 THEN 'quick_review' ELSE 'full_review' END
            WHEN 'expert' THEN 'full_review'
            WHEN 'audit' THEN 'auto'
            ELSE CASE WHEN r_route < 0.68 THEN 'auto' WHEN r_route < 0.86 THEN 'quick_review'
                      WHEN r_route < 0.97 THEN 'full_review' ELSE 'shadow' END
        END AS route,
        CASE
            WHEN wkind = 'quick' THEN now() - r_time * interval '30 hours'
            WHEN wkind = 'full' THEN now() - r_time * interval '5 hours'
            WHEN wkind = 'escalation' THEN now() - interval '1 hour' - r_time * interval '5 hours'
            WHEN wkind = 'expert' THEN now() - r_time * interval '10 hours'
            WHEN wkind = 'audit' THEN now() - r_time * interval '80 hours'
            WHEN i > {recent_from} THEN now() - r_time * interval '30 hours'
            ELSE now() - interval '31 hours'
                 - ({recent_from} - i)::float8 / {max(recent_from, 1)} * interval '180 days'
                 - r_time * interval '10 minutes'
        END AS created
    FROM k
), d AS MATERIALIZED (
    SELECT r.*,
        CASE WHEN route = 'auto' THEN round((0.9 + r_conf * 0.1)::numeric, 4)
             WHEN route = 'quick_review' THEN round((0.6 + r_conf * 0.3)::numeric, 4)
             WHEN route = 'full_review' THEN round((0.3 + r_conf * 0.3)::numeric, 4)
             ELSE round((0.3 + r_conf * 0.7)::numeric, 4) END::float8 AS confidence,
        -- the queue kind the case sits in: a waiting one's, or where a decided one was decided
        CASE WHEN wkind IS NOT NULL THEN wkind
             WHEN route = 'auto' THEN CASE WHEN r_status < 0.05 THEN 'audit' END
             WHEN r_misc < 0.06 THEN 'escalation' WHEN r_misc < 0.08 THEN 'expert'
             WHEN route = 'quick_review' THEN 'quick' ELSE 'full' END AS qkind,
        CASE WHEN wkind IN ('quick', 'full') THEN
                 CASE WHEN r_misc < 0.03 THEN 'claimed' WHEN r_misc < 0.04 THEN 'claimed' ELSE 'queued' END
             WHEN wkind IN ('escalation', 'expert') THEN 'escalated'
             WHEN route = 'auto' THEN 'auto_approved'
             WHEN r_decide < 0.78 THEN 'approved' WHEN r_decide < 0.92 THEN 'corrected' ELSE 'rejected' END AS status,
        (floor(r_seg * 64))::int AS seg
    FROM r
)
INSERT INTO cases_case (
    id, category_id, external_id, input, output, confidence, model_version_id, rules_fired, value, segment,
    segment_key, customer_ref, priority, route, route_reasons, policy_version, audit_sampled, audit_draw, queue_id,
    due_at, claimed_by_id, claimed_until, status, final_output, audit_status, created_at, updated_at, decided_at)
SELECT
    i, {fx.category_id}, 'bench-' || lpad(i::text, 8, '0'),
    jsonb_build_object(
        'text', ({sql_text_array(TEXTS)})[1 + i % {len(TEXTS)}],
        'order_id', 'ORD-' || (100000 + (i::bigint * 7919) % 900000),
        'locale', ({sql_text_array(LOCALES)})[1 + (i / 7) % {len(LOCALES)}],
        'attachments', (i / 3) % 4),
    jsonb_build_object(
        'label', label, 'text', 'Classified as ' || label || '.',
        'reasoning', 'The message mentions ' || replace(label, '_', ' ') || '-related terms.',
        'score', confidence),
    confidence, {fx.model_version_id},
    CASE WHEN r_rules < 0.2 THEN jsonb_build_array(({sql_text_array(RULES)})[1 + (i / 11) % {len(RULES)}])
         WHEN r_rules < 0.3 THEN jsonb_build_array('keyword_match', 'repeat_contact')
         ELSE '[]'::jsonb END,
    CASE WHEN r_val < 0.7 THEN least(round(exp(4.5 + 1.2 * sqrt(-2 * ln(greatest(r_val2, 1e-9)))
                                     * cos(2 * pi() * r_cust))::numeric, 2), 999999999.99) END,
    jsonb_build_object(
        'channel', ({sql_text_array(CHANNELS)})[1 + seg % 4],
        'tier', ({sql_text_array(TIERS)})[1 + (seg / 4) % 4],
        'region', ({sql_text_array(REGIONS)})[1 + (seg / 16) % 4]),
    '{{"channel":"' || ({sql_text_array(CHANNELS)})[1 + seg % 4]
        || '","region":"' || ({sql_text_array(REGIONS)})[1 + (seg / 16) % 4]
        || '","tier":"' || ({sql_text_array(TIERS)})[1 + (seg / 4) % 4] || '"}}',
    'cust-' || floor({customers} * r_cust * r_cust)::int,
    CASE WHEN r_prio < 0.05 THEN 'urgent' ELSE 'normal' END,
    route,
    CASE route
        WHEN 'auto' THEN jsonb_build_array('Confidence ' || confidence || ' is at or above the auto threshold 0.9.')
        WHEN 'quick_review' THEN jsonb_build_array('Confidence ' || confidence || ' is below the auto threshold 0.9.')
        WHEN 'full_review' THEN jsonb_build_array(
            'Confidence ' || confidence || ' is below the review threshold 0.6.',
            'The label or a rule fired is sensitive.')
        ELSE jsonb_build_array('The category is in shadow: every case is reviewed blind.') END,
    1,
    coalesce(qkind = 'audit', false),
    jsonb_build_object('ramp', jsonb_build_object('share', 80.0, 'draw', round(r_conf::numeric, 4)),
                       'audit', jsonb_build_object('rate', 0.05, 'draw', round(r_status::numeric, 4))),
    CASE qkind WHEN 'quick' THEN {q["quick"]} WHEN 'full' THEN {q["full"]} WHEN 'escalation' THEN {q["escalation"]}
               WHEN 'expert' THEN {q["expert"]} WHEN 'audit' THEN {q["audit"]} END,
    CASE
        WHEN wkind = 'escalation' THEN now() - r_misc * interval '72 minutes' + interval '1 hour'
        WHEN qkind = 'quick' THEN created + interval '24 hours'
        WHEN qkind = 'full' THEN created + interval '4 hours'
        WHEN qkind = 'escalation' THEN created + interval '3 hours'
        WHEN qkind = 'expert' THEN created + interval '8 hours'
        WHEN qkind = 'audit' THEN created + interval '72 hours'
    END,
    CASE WHEN status = 'claimed' THEN ({reviewers})[1 + (i % {len(fx.historic_reviewer_ids)})] END,
    CASE WHEN status = 'claimed' AND r_misc < 0.03 THEN now() + interval '1 hour' + r_status * interval '15 minutes'
         WHEN status = 'claimed' THEN now() - r_status * interval '2 hours' END,
    status,
    CASE WHEN status IN ('auto_approved', 'approved') THEN jsonb_build_object(
             'label', label, 'text', 'Classified as ' || label || '.',
             'reasoning', 'The message mentions ' || replace(label, '_', ' ') || '-related terms.',
             'score', confidence)
         WHEN status = 'corrected' THEN jsonb_build_object(
             'label', ({sql_text_array(LABELS)})[1 + (i / 5) % {len(LABELS)}],
             'text', 'Corrected by a reviewer.')
    END,
    CASE WHEN wkind = 'audit' THEN 'pending'
         WHEN qkind = 'audit' AND r_misc < 0.95 THEN 'confirmed'
         WHEN qkind = 'audit' THEN 'flagged'
         ELSE '' END,
    created,
    CASE WHEN status IN ('queued', 'claimed', 'escalated') THEN created
         ELSE least(now(), created + r_misc * interval '20 hours') END,
    CASE WHEN status IN ('queued', 'claimed', 'escalated') THEN NULL
         WHEN route = 'auto' THEN created
         ELSE least(now(), created + r_misc * interval '20 hours') END
FROM d
"""


def history_sql(fx: Fixture, lo: int, hi: int) -> str:
    """The history intake and decisions would have written: '+' at routing (a reviewed case then still queued),
    and '~' with the case as it is now for every case a person acted on."""
    columns = (
        "id, external_id, input, output, confidence, rules_fired, value, segment, segment_key, customer_ref, "
        "priority, route, route_reasons, policy_version, audit_sampled, audit_draw, due_at, claimed_until, "
        "final_output, created_at, decided_at, category_id, claimed_by_id, model_version_id, queue_id"
    )
    return f"""
INSERT INTO cases_historicalcase ({columns}, status, audit_status,
    history_date, history_change_reason, history_type, history_user_id)
SELECT {columns},
    CASE WHEN route = 'auto' THEN 'auto_approved' ELSE 'queued' END,
    CASE WHEN audit_status = '' THEN '' ELSE 'pending' END,
    created_at, 'Submitted and routed', '+', {fx.integration_id}
FROM cases_case WHERE id BETWEEN {lo} AND {hi}
UNION ALL
SELECT {columns}, status, audit_status,
    coalesce(decided_at, updated_at) + interval '1 second',
    CASE WHEN status = 'escalated' THEN 'escalate (policy_legal)' WHEN audit_status IN ('confirmed', 'flagged')
         THEN 'audited' ELSE status END,
    '~', {fx.historic_reviewer_ids[0]} + (id % {len(fx.historic_reviewer_ids)})::int
FROM cases_case
WHERE id BETWEEN {lo} AND {hi} AND (status IN ('approved', 'corrected', 'rejected', 'escalated')
                                  OR audit_status IN ('confirmed', 'flagged'))
"""


def decisions_sql(fx: Fixture, lo: int, hi: int) -> str:
    """One Decision per human action: the escalation of a case that went through the escalation or expert queue,
    the final approve/correct/reject, and the confirm/flag of an audit."""
    q = fx.queues
    first, count = fx.historic_reviewer_ids[0], len(fx.historic_reviewer_ids)
    notes = sql_text_array(NOTES)
    return f"""
INSERT INTO reviews_decision (action, output_before, output_after, reason_code, notes, seconds_spent, batch_id,
    model_version, policy_version, created_at, actor_id, case_id)
SELECT 'escalate', output, NULL::jsonb,
    CASE WHEN queue_id = {q["expert"]} THEN 'needs_expert' ELSE 'policy_legal' END,
    'Needs a second opinion.', 20 + (id * 13) % 300, NULL::uuid, '{MODEL_LABEL}', 1,
    created_at + interval '10 minutes', {first} + ((id + 3) % {count})::int, id
FROM cases_case
WHERE id BETWEEN {lo} AND {hi} AND queue_id IN ({q["escalation"]}, {q["expert"]})
UNION ALL
SELECT CASE status WHEN 'approved' THEN 'approve' WHEN 'corrected' THEN 'correct' ELSE 'reject' END,
    output, CASE status WHEN 'rejected' THEN NULL ELSE final_output END,
    CASE status WHEN 'rejected' THEN 'wrong_label' WHEN 'corrected' THEN 'wrong_label' ELSE '' END,
    CASE WHEN status = 'approved' AND id % 3 <> 0 THEN '' ELSE ({notes})[1 + id % {len(NOTES)}] END,
    5 + (id * 37) % 240, NULL::uuid, '{MODEL_LABEL}', 1, decided_at, {first} + (id % {count})::int, id
FROM cases_case
WHERE id BETWEEN {lo} AND {hi} AND status IN ('approved', 'corrected', 'rejected')
UNION ALL
SELECT CASE audit_status WHEN 'confirmed' THEN 'confirm' ELSE 'flag' END,
    output, CASE audit_status WHEN 'flagged' THEN output || '{{"label": "refund"}}'::jsonb END,
    CASE audit_status WHEN 'flagged' THEN 'wrong_label' ELSE '' END, '',
    5 + (id * 37) % 120, NULL::uuid, '{MODEL_LABEL}', 1, created_at + interval '2 days',
    {first} + (id % {count})::int, id
FROM cases_case
WHERE id BETWEEN {lo} AND {hi} AND audit_status IN ('confirmed', 'flagged')
"""


def audit_events_sql(fx: Fixture, lo: int, hi: int) -> str:
    """case.routed for every case, and one event per decision of the chunk (seq: above the real chain)."""
    slug, base = fx.category_slug, GENERATED_SEQ_BASE
    routed = routed_events_sql(
        seq=f"{base} + id * 4",
        integration_id=fx.integration_id,
        category_slug=f"'{slug}'",
        status="CASE WHEN route = 'auto' THEN 'auto_approved' ELSE 'queued' END",
        lo=lo,
        hi=hi,
    )
    return f"""
{AUDIT_EVENT_INSERT}
{routed}
UNION ALL
SELECT {base} + d.case_id * 4 + 1 + row_number() OVER (PARTITION BY d.case_id ORDER BY d.id), d.created_at,
    CASE d.action WHEN 'escalate' THEN 'case.escalated' WHEN 'confirm' THEN 'case.audited'
                  WHEN 'flag' THEN 'case.audited' ELSE 'case.decided' END,
    d.actor_id, 'bench-past-reviewer', '{slug}', d.case_id,
    jsonb_build_object('decision_id', d.id, 'action', d.action, 'reason_code', d.reason_code,
                       'seconds_spent', d.seconds_spent),
    repeat('0', 64), md5('d' || d.id) || md5('decision' || d.id)
FROM reviews_decision d WHERE d.case_id BETWEEN {lo} AND {hi}
"""


def generate(fx: Fixture, n: int, backlog: Backlog, seed: int) -> dict[str, Any]:
    """Fill the scratch database with n cases and what goes with them, in chunks; then ANALYZE."""
    from django.db import connection

    start = time.perf_counter()
    timings = generate_in_chunks(
        n,
        seed=seed,
        steps=lambda lo, hi: (
            ("cases", cases_sql(fx, n, backlog, lo, hi)),
            ("history", history_sql(fx, lo, hi)),
            ("decisions", decisions_sql(fx, lo, hi)),
            ("audit_events", audit_events_sql(fx, lo, hi)),
        ),
        what="cases with history, decisions and audit events",
    )
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        cursor.execute("ANALYZE")
        timings["analyze"] = time.perf_counter() - t0
        counts = row_counts(cursor, ("cases_case", "cases_historicalcase", "reviews_decision", "governance_auditevent"))
        cursor.execute(
            "SELECT q.kind, c.status, count(*) FROM cases_case c LEFT JOIN cases_queue q ON q.id = c.queue_id "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        )
        by_queue_status = {f"{kind or '-'}/{status}": count for kind, status, count in cursor.fetchall()}
        db_size = database_size(cursor)
    seconds = time.perf_counter() - start
    print(
        f"  generation took {seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}); "
        f"database {db_size}",
        flush=True,
    )
    return {
        "seconds": round(seconds, 1),
        "seconds_by_step": {k: round(v, 1) for k, v in timings.items()},
        "rows": counts,
        "cases_by_queue_kind_and_status": by_queue_status,
        "database_size": db_size,
        "backlog": backlog.__dict__,
    }
