"""bench/labels.py's fixture and data: the category (its PII field set) with its queues and model version,
the reviewers (some certified by the curator through the service) and the curator's API token; then per label,
generated in SQL chunk by chunk, a case whose message's words tell the label, the reviewer's decision and the
label, in time order; then VACUUM ANALYZE.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import BenchError
from common_data import (
    MODEL_LABEL,
    create_bench_category,
    create_reviewer,
    database_size,
    generate_in_chunks,
    row_counts,
    sql_int_array,
    sql_text_array,
)

CATEGORY_SLUG = "bench-labels"
PII_FIELDS = ["customer"]
REVIEWERS = 10
CERTIFIED = 9  # of REVIEWERS in the export's data: 90 % of its labels pass the gate
CURATOR = "bench-curator"
DAYS = 60  # the labels span this many days up to now
MODEL_RIGHT = 0.85  # the share of cases whose model label the reviewer approved
EMAIL_SHARE = 0.2  # the share of messages with an e-mail address in them (redacted in the export)

# The words that tell each label apart (a text model must learn them), and filler that does not.
TOPIC_WORDS = {
    "shipping": ("parcel", "courier", "delivery", "tracking"),
    "refund": ("refund", "money back", "reimburse", "return it"),
    "billing": ("invoice", "charged twice", "payment", "receipt"),
    "account": ("password", "login", "sign in", "two-factor"),
    "cancellation": ("cancel", "unsubscribe", "end my plan", "terminate"),
}
TOPICS = tuple(TOPIC_WORDS)
WORDS_PER_TOPIC = 4
FILLER = ("please", "today", "my order", "again", "thanks", "urgent", "hello", "since monday", "help", "asap")


# --- The fixture and the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    category_id: int
    model_version_id: int
    quick_queue_id: int
    reviewer_ids: list[int]
    certified_ids: list[int]
    curator_id: int
    token: str


def create_fixture(*, certified: int) -> Fixture:
    """The category (its PII field set) with its queues and model version; the reviewers, the first `certified` of
    them certified by the curator through the service; the curator's API token."""
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from governance.models import Category
    from governance.permissions import DATA_CURATOR, REVIEWER
    from reviews.services import certify

    bench = create_bench_category(slug=CATEGORY_SLUG, name="Bench labels")
    Category.objects.filter(pk=bench.category.pk).update(pii_fields=PII_FIELDS)
    quick = bench.queues["quick"]
    reviewer_group, curator_group = Group.objects.get(name=REVIEWER), Group.objects.get(name=DATA_CURATOR)
    reviewers = [
        create_reviewer(f"bench-reviewer-{i:02d}", queues=[quick], groups=[reviewer_group])
        for i in range(1, REVIEWERS + 1)
    ]
    curator = create_reviewer(CURATOR, queues=[], groups=[curator_group])
    for reviewer in reviewers[:certified]:
        certify(curator=curator, reviewer=reviewer, category=bench.category, reason="bench")
    return Fixture(
        category_id=bench.category.pk,
        model_version_id=bench.model_version.pk,
        quick_queue_id=quick.pk,
        reviewer_ids=[u.pk for u in reviewers],
        certified_ids=[u.pk for u in reviewers[:certified]],
        curator_id=curator.pk,
        token=Token.objects.create(user=curator).key,
    )


def cases_sql(fx: Fixture, total: int, anchor: datetime, lo: int, hi: int) -> str:
    """INSERT the cases lo..hi (ids = row numbers), decided, spread over DAYS days up to the anchor in id order:
    each case's message says its true label in two of that label's words among filler; the model said the true
    label MODEL_RIGHT of the time (approved), another one otherwise (corrected)."""
    n = len(TOPICS)
    topics = sql_text_array(TOPICS)
    words = sql_text_array(word for topic in TOPICS for word in TOPIC_WORDS[topic])
    filler, f = sql_text_array(FILLER), len(FILLER)
    at = f"'{anchor.isoformat()}'::timestamptz"
    return f"""
WITH g AS MATERIALIZED (
    SELECT i, random() AS r_topic, random() AS r_w1, random() AS r_w2, random() AS r_f1, random() AS r_f2,
        random() AS r_f3, random() AS r_right, random() AS r_other, random() AS r_mail, random() AS r_conf,
        random() AS r_time
    FROM generate_series({lo}, {hi}) AS i
), t AS MATERIALIZED (
    SELECT g.*, 1 + floor(r_topic * {n})::int AS truth FROM g
), k AS MATERIALIZED (
    SELECT t.*,
        CASE WHEN r_right < {MODEL_RIGHT} THEN truth ELSE 1 + (truth + floor(r_other * {n - 1})::int) % {n} END
            AS said,
        round((0.6 + r_conf * 0.3)::numeric, 4)::float8 AS confidence,
        {at} - interval '10 minutes' - ({total} - i + r_time) / {total} * interval '{DAYS} days' AS created
    FROM t
), m AS MATERIALIZED (
    SELECT k.*, ({topics})[truth] AS truth_label, ({topics})[said] AS said_label,
        'Hello, ' || ({filler})[1 + floor(r_f1 * {f})::int] || ' '
            || ({words})[(truth - 1) * {WORDS_PER_TOPIC} + 1 + floor(r_w1 * {WORDS_PER_TOPIC})::int] || ' '
            || ({filler})[1 + floor(r_f2 * {f})::int] || ' '
            || ({words})[(truth - 1) * {WORDS_PER_TOPIC} + 1 + floor(r_w2 * {WORDS_PER_TOPIC})::int] || ' '
            || ({filler})[1 + floor(r_f3 * {f})::int] || '. Order ORD-' || (100000 + (i::bigint * 7919) % 900000)
            || CASE WHEN r_mail < {EMAIL_SHARE} THEN ', write to me at c' || i || '@example.com.' ELSE '.' END
            AS message
    FROM k
)
INSERT INTO cases_case (
    id, category_id, external_id, input, output, confidence, model_version_id, rules_fired, value, segment,
    segment_key, customer_ref, priority, route, route_reasons, policy_version, audit_sampled, audit_draw, queue_id,
    due_at, claimed_by_id, claimed_until, status, final_output, audit_status, sla_warned_at, created_at, updated_at,
    decided_at)
SELECT
    i, {fx.category_id}, 'labels-' || lpad(i::text, 8, '0'),
    jsonb_build_object('subject', 'Ticket ' || i, 'message', message, 'customer', 'Customer ' || i),
    jsonb_build_object('label', said_label, 'text', 'Classified as ' || said_label || '.', 'score', confidence),
    confidence, {fx.model_version_id}, '[]'::jsonb, NULL, '{{}}'::jsonb, '', 'cust-' || (i % 5000), 'normal',
    'quick_review', jsonb_build_array('Confidence ' || confidence || ' is below the auto threshold 0.9.'), 1, false,
    '{{}}'::jsonb, {fx.quick_queue_id}, created + interval '4 hours', NULL, NULL,
    CASE WHEN said = truth THEN 'approved' ELSE 'corrected' END,
    CASE WHEN said = truth THEN jsonb_build_object(
            'label', said_label, 'text', 'Classified as ' || said_label || '.', 'score', confidence)
         ELSE jsonb_build_object('label', truth_label, 'text', 'Corrected by a reviewer.') END,
    '', NULL, created, created + interval '5 minutes', created + interval '5 minutes'
FROM m
"""


def decisions_sql(fx: Fixture, lo: int, hi: int) -> str:
    """The reviewer's decision on each case lo..hi: approve, or correct with its reason code."""
    reviewers, r = sql_int_array(fx.reviewer_ids), len(fx.reviewer_ids)
    return f"""
INSERT INTO reviews_decision (action, output_before, output_after, reason_code, notes, seconds_spent, batch_id,
    model_version, policy_version, created_at, actor_id, case_id)
SELECT CASE status WHEN 'approved' THEN 'approve' ELSE 'correct' END, output, final_output,
    CASE status WHEN 'approved' THEN '' ELSE 'wrong_label' END, '', 20 + id % 90, NULL, '{MODEL_LABEL}', 1,
    decided_at, ({reviewers})[1 + id % {r}], id
FROM cases_case WHERE id BETWEEN {lo} AND {hi}
"""


def labels_sql(fx: Fixture, lo: int, hi: int) -> str:
    """Each decision's label, as reviews.services.labels.record_label makes it: certified (and so past the gate)
    when its reviewer is one of the certified ones."""
    certified = sql_int_array(fx.certified_ids)
    return f"""
INSERT INTO reviews_label (case_id, category_id, decision_id, source, label, output, model_label, reviewer_id,
    reason_code, model_version, policy_version, certified, passed_gate, superseded, created_at)
SELECT c.id, c.category_id, d.id, d.action, d.output_after->>'label', d.output_after, c.output->>'label',
    d.actor_id, d.reason_code, d.model_version, d.policy_version, d.actor_id = ANY({certified}),
    d.actor_id = ANY({certified}), false, d.created_at
FROM cases_case c JOIN reviews_decision d ON d.case_id = c.id
WHERE c.id BETWEEN {lo} AND {hi}
"""


def generate(fx: Fixture, labels: int, seed: int) -> dict[str, Any]:
    """Fill the scratch database with `labels` decided cases, their decisions and labels; VACUUM ANALYZE."""
    from django.db import connection
    from django.utils import timezone

    anchor = timezone.now()
    start = time.perf_counter()
    timings = generate_in_chunks(
        labels,
        seed=seed,
        steps=lambda lo, hi: (
            ("cases", cases_sql(fx, labels, anchor, lo, hi)),
            ("decisions", decisions_sql(fx, lo, hi)),
            ("labels", labels_sql(fx, lo, hi)),
        ),
        what="cases with their decisions and labels",
    )
    with connection.cursor() as cursor:
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t0
        counts = row_counts(cursor, ("cases_case", "reviews_decision", "reviews_label"))
        cursor.execute("SELECT source, passed_gate, count(*) FROM reviews_label GROUP BY 1, 2 ORDER BY 1, 2")
        by_source = {f"{source}/{'gated' if gated else 'not gated'}": n for source, gated, n in cursor.fetchall()}
        size = database_size(cursor)
    if counts["reviews_label"] != labels:
        raise BenchError(f"Generated {counts['reviews_label']:,} labels, planned {labels:,}: a bug here.")
    seconds = time.perf_counter() - start
    print(f"  generated in {seconds:.1f} s; {by_source}; database {size}", flush=True)
    return {
        "seconds": round(seconds, 1),
        "seconds_by_step": {k: round(v, 1) for k, v in timings.items()},
        "rows": counts,
        "labels_by_source_and_gate": by_source,
        "database_size": size,
    }
