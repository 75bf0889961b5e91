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
import cProfile
import http.client
import os
import random
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

from common import (
    BenchError,
    ScratchDatabase,
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
    MODEL_LABEL,
    create_bench_category,
    create_reviewer,
    database_size,
    generate_in_chunks,
    row_counts,
    size_label,
    sql_int_array,
    sql_text_array,
)
from common_measure import latency_summary, profile_text
from common_server import Server

CATEGORY_SLUG = "bench-labels"
PII_FIELDS = ["customer"]
REVIEWERS = 10
CERTIFIED = 9  # of REVIEWERS in the export's data: 90 % of its labels pass the gate
CURATOR = "bench-curator"
EXPORT_URL = "/api/v1/labels/?category={slug}&format={fmt}"
FORMATS = ("jsonl", "csv")
DAYS = 60  # the labels span this many days up to now
MODEL_RIGHT = 0.85  # the share of cases whose model label the reviewer approved
EMAIL_SHARE = 0.2  # the share of messages with an e-mail address in them (redacted in the export)
WARMUP_LABELS = 1000
SERVER_TIMEOUT_SECONDS = 900  # gunicorn's --timeout here: a sync worker is killed after it, mid-stream
READ_BYTES = 64 * 1024
PREDICTION_WARMUP = 20

# DESIGN.md "Budgets".
TARGET_EXPORT_RATE = 20_000.0
BUDGET_LABELS = 1_000_000
TARGET_TRAINING_SECONDS = 120.0
BUDGET_TRAINING_LABELS = 100_000
TARGET_PREDICTION_MS = 5.0
FLAT_RATIO = 1.25  # memory is flat when the largest size's growth is within this ratio of the smallest's ...
FLAT_SLACK_MIB = 16.0  # ... or within this many MiB of it

SERVER_SETTINGS = ("shared_buffers", "work_mem", "effective_cache_size", "jit")

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


# --- The web process: its memory and CPU ----------------------------------------------------------------------


class ExportServer(Server):
    """common_server.Server with a longer --timeout: a sync worker is killed by its timeout even mid-stream."""

    @property
    def command(self) -> list[str]:
        command = super().command
        command[command.index("--timeout") + 1] = str(SERVER_TIMEOUT_SECONDS)
        return command

    def worker_pid(self) -> int:
        """The one worker's pid (gunicorn's master forks it)."""
        assert self.process is not None
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) != 1:
            raise BenchError(f"Expected one gunicorn worker under pid {master}, found {children}")
        return int(children[0])


def status_kib(pid: int, field: str) -> int:
    """A figure of /proc/<pid>/status in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"No {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak resident set of the process to its current one (clear_refs 5); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler(threading.Thread):
    """The largest VmRSS seen every 50 ms: the peak where clear_refs is refused, and a check of VmHWM anyway."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_kib = status_kib(pid, "VmRSS")
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.max_kib = max(self.max_kib, status_kib(self.pid, "VmRSS"))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.max_kib


def stream(port: int, token: str, path: str) -> tuple[int, int, int, float, float]:
    """GET `path`, reading the body to its end: status, bytes, lines, seconds to the first byte and to the last."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SERVER_TIMEOUT_SECONDS)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    first = time.perf_counter() - start
    size = lines = 0
    while chunk := response.read(READ_BYTES):
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    conn.close()
    return response.status, size, lines, first, elapsed


def measure_export(server: ExportServer, fx: Fixture, fmt: str, expected: int, warmup_until: str) -> dict[str, Any]:
    """One warm-up export of the oldest WARMUP_LABELS, then the whole category: rate, CPU and memory of the worker."""
    path = EXPORT_URL.format(slug=CATEGORY_SLUG, fmt=fmt)
    warm_status, *_ = stream(server.port, fx.token, f"{path}&until={warmup_until}")
    if warm_status != 200:
        raise BenchError(f"The warm-up export answered {warm_status}:\n{server.log_tail()}")
    pid = server.worker_pid()
    rss_before = status_kib(pid, "VmRSS")
    peak_reset = reset_peak(pid)
    cpu_before = cpu_seconds(pid)
    sampler = RssSampler(pid)
    sampler.start()
    status, size, lines, first, elapsed = stream(server.port, fx.token, path)
    sampled_kib = sampler.stop()
    cpu = cpu_seconds(pid) - cpu_before
    peak_kib = status_kib(pid, "VmHWM") if peak_reset else sampled_kib
    rss_after = status_kib(pid, "VmRSS")
    records = lines - (1 if fmt == "csv" else 0)
    if status != 200 or records != expected:
        raise BenchError(f"GET {path}: status {status}, {records:,} records of {expected:,}:\n{server.log_tail()}")
    result = {
        "path": path,
        "records": records,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "first_byte_ms": round(first * 1000, 1),
        "records_per_second": round(records / elapsed),
        "worker_cpu_seconds": round(cpu, 2),
        "worker_cpu_us_per_record": round(cpu / records * 1e6, 1),
        "rss_before_mib": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_growth_mib": round((peak_kib - rss_before) / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "peak_from": "VmHWM after clear_refs" if peak_reset else "VmRSS sampled every 50 ms",
        "sampled_peak_rss_mib": round(sampled_kib / 1024, 1),
    }
    print(
        f"  {fmt}: {records:,} records, {size / 2**20:.0f} MiB in {elapsed:.1f} s = {records / elapsed:,.0f}/s "
        f"(worker CPU {cpu:.1f} s); worker RSS {rss_before / 1024:.0f} MiB before, peak "
        f"{peak_kib / 1024:.0f} MiB (+{(peak_kib - rss_before) / 1024:.1f})",
        flush=True,
    )
    return result


def profile_export(fx: Fixture, fmt: str, top: int) -> str:
    """A cProfile of the whole export in this process, through the real view (Django's test client)."""
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=fx.curator_id))
    profiler = cProfile.Profile()

    def work() -> None:
        response: Any = client.get(EXPORT_URL.format(slug=CATEGORY_SLUG, fmt=fmt))
        for _ in response.streaming_content:
            pass

    profiler.runcall(work)
    return profile_text(profiler, "cumulative", top) + profile_text(profiler, "tottime", top)


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


# --- Training and prediction ----------------------------------------------------------------------------------


def run_training(labels: int, database: ScratchDatabase, args: argparse.Namespace) -> dict[str, Any]:
    from governance.models import Category
    from governance.predictor import input_text, load_predictor
    from metrics.services.training import train_model

    database.create()
    print(f"\n=== training on {labels:,} labels: scratch database {database.name!r} created; migrating ...")
    use_database(database.name)
    migrate()
    fx = create_fixture(certified=REVIEWERS)  # every label gated: all of them are training data
    generation = generate(fx, labels, args.seed + 1)
    category = Category.objects.get(pk=fx.category_id)
    print(f"  train_model on {labels:,} gated labels ...", flush=True)
    t0 = time.perf_counter()
    result = train_model(category=category)
    seconds = time.perf_counter() - t0
    metrics = result.model_version.metrics
    print(
        f"  trained in {seconds:.1f} s (the service's own count {result.seconds:.1f} s); held-out accuracy "
        f"{metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f} on {metrics['n']:,}",
        flush=True,
    )

    t0 = time.perf_counter()
    predictor = load_predictor(result.model_version)
    load_ms = (time.perf_counter() - t0) * 1000
    if predictor.lean is None:
        raise BenchError(f"{result.model_version.label} has no lean prediction path: build_estimator changed shape?")
    sklearn_predictor = replace(predictor, lean=None)
    inputs = list(
        category.cases.order_by("-id").values_list("input", flat=True)[: args.predictions + PREDICTION_WARMUP]
    )
    pii_fields = category.pii_fields
    for value in inputs[:PREDICTION_WARMUP]:
        text = input_text(value, pii_fields=pii_fields)
        predictor.predict([text])
        sklearn_predictor.predict([text])
    # The two paths one after the other on each input, so a burst of load on the shared machine hits both.
    # The thread's CPU time beside the wall clock: on a shared machine a call descheduled mid-way shows in the
    # wall-clock tail, not in its CPU time.
    with_text_ms, predict_ms, sklearn_ms, predict_cpu_ms, sklearn_cpu_ms = [], [], [], [], []
    for value in inputs[PREDICTION_WARMUP:]:
        t0 = time.perf_counter()
        text = input_text(value, pii_fields=pii_fields)
        t1, c1 = time.perf_counter(), time.thread_time()
        predictor.predict([text])
        t2, c2 = time.perf_counter(), time.thread_time()
        sklearn_predictor.predict([text])
        t3, c3 = time.perf_counter(), time.thread_time()
        with_text_ms.append((t2 - t0) * 1000)
        predict_ms.append((t2 - t1) * 1000)
        sklearn_ms.append((t3 - t2) * 1000)
        predict_cpu_ms.append((c2 - c1) * 1000)
        sklearn_cpu_ms.append((c3 - c2) * 1000)
    prediction = latency_summary(with_text_ms, (50, 95, 99), digits=3)
    sklearn_summary = latency_summary(sklearn_ms, (50, 95, 99), digits=3)
    print(
        f"  predictor loaded in {load_ms:.0f} ms; {len(with_text_ms)} predictions (input_text + predict): "
        f"p50 {prediction['p50_ms']:.2f} ms, p99 {prediction['p99_ms']:.2f} ms, max {prediction['max_ms']:.2f} ms; "
        f"scikit-learn's predict_proba: p50 {sklearn_summary['p50_ms']:.2f} ms, p99 {sklearn_summary['p99_ms']:.2f} ms",
        flush=True,
    )
    intake = measure_intake(result.model_version, sklearn_predictor, inputs, args)
    return {
        "labels": labels,
        "database": database.name,
        "generation": generation,
        "training": {
            "seconds": round(seconds, 1),
            "service_training_seconds": result.seconds,
            "model_version": result.model_version.label,
            "n_train": metrics["n_train"],
            "n_held_out": metrics["n"],
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "artifact_bytes": len(bytes(result.model_version.artifact.data)),
        },
        "prediction": {
            "load_ms": round(load_ms, 1),
            "measured": "governance.predictor: input_text(input, pii_fields) + Predictor.predict([text]) on the lean "
            "path, one case a call, in this process; sklearn_predict_proba: the same predictor without its lean "
            "path (scikit-learn's predict_proba), timed right after on the same text",
            **prediction,
            "predict_only": latency_summary(predict_ms, (50, 95, 99), digits=3),
            "predict_only_cpu": latency_summary(predict_cpu_ms, (50, 95, 99), digits=3),
            "sklearn_predict_proba": sklearn_summary,
            "sklearn_predict_proba_cpu": latency_summary(sklearn_cpu_ms, (50, 95, 99), digits=3),
        },
        "intake": intake,
    }


def measure_intake(version: Any, sklearn_predictor: Any, inputs: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """What a prediction adds to intake: the trained version promoted to active, then for each of
    `--intake-requests` inputs, in this process through Django's test client, POST /api/v1/cases/ three times on
    fresh external ids: without an answer (the lean path predicts), without one again with scikit-learn's
    predict_proba predicting, and with the answer the model would give sent by the client (the same label and
    confidence, so the case is routed the same way). Each request's time less the answered one's, per input."""
    from django.contrib.auth.models import User
    from django.test import Client
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from cases.services.intake import router as intake_router
    from cases.services.prediction import predictor_for
    from governance.predictor import input_text
    from governance.services import promote_model_version

    version = promote_model_version(model_version=version, status="active", user=None, reason="bench: predict")
    user = User.objects.create_user(username="bench-integration")
    assign_perm("governance.submit_case", user, version.category)
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}", HTTP_HOST="127.0.0.1")
    lean = predictor_for(version)
    pii_fields = version.category.pii_fields
    sent = inputs[PREDICTION_WARMUP:][: args.intake_requests]
    answers = [lean.predict([input_text(value, pii_fields=pii_fields)])[0] for value in sent]

    def post(body: dict[str, Any]) -> float:
        t0 = time.perf_counter()
        response = client.post("/api/v1/cases/", body, content_type="application/json")
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 201:
            raise BenchError(f"POST /api/v1/cases/ answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    def body(i: int, kind: str, value: Any) -> dict[str, Any]:
        return {"category": CATEGORY_SLUG, "external_id": f"predict-{kind}-{i:05d}", "input": value}

    def sklearn_for(wanted: Any) -> Any:
        return sklearn_predictor

    # Intake's own prediction step (the router's _answer_unanswered: check the version, the texts, predict), timed
    # inside each request: on a loaded machine a whole request varies by far more than a prediction costs.
    step_ms: list[float] = []
    answer_unanswered = intake_router.Router._answer_unanswered

    def timed_step(router: Any, items: Any) -> Any:
        t0 = time.perf_counter()
        answered_items = answer_unanswered(router, items)
        step_ms.append((time.perf_counter() - t0) * 1000)
        return answered_items

    def timed_post(request: dict[str, Any]) -> tuple[float, float]:
        step_ms.clear()
        with mock.patch.object(intake_router.Router, "_answer_unanswered", timed_step):
            elapsed = post(request)
        return elapsed, sum(step_ms)

    for i, value in enumerate(inputs[:PREDICTION_WARMUP]):  # one-off lookups (content types, caches) uncounted
        post(body(i, "warm", value))
    rng = random.Random(args.seed)
    kinds = ["lean", "sklearn", "answered"]
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    steps: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i, (value, (label, confidence)) in enumerate(zip(sent, answers, strict=True)):
        rng.shuffle(kinds)  # no kind always first after the previous input's requests
        for kind in kinds:
            request = body(i, kind, value)
            if kind == "answered":
                request.update(output={"label": label}, confidence=confidence, model_version=version.label)
            with mock.patch.object(intake_router, "predictor_for", sklearn_for) if kind == "sklearn" else nullcontext():
                elapsed, step = timed_post(request)
            timings[kind].append(elapsed)
            steps[kind].append(step)
    added = {
        path: [a - b for a, b in zip(timings[path], timings["answered"], strict=True)] for path in ("lean", "sklearn")
    }
    step_added = {
        path: [a - b for a, b in zip(steps[path], steps["answered"], strict=True)] for path in ("lean", "sklearn")
    }
    result: dict[str, Any] = {
        "measured": "POST /api/v1/cases/ in this process (Django test client, token auth), a category whose active "
        "version is built-in: without output (lean path; scikit-learn's path) and with the model's own answer "
        "sent, on the same input one after the other; added = unanswered less answered, per input",
        "requests": len(sent),
        "answered": latency_summary(timings["answered"], (50, 99), digits=3),
        **{f"unanswered_{path}": latency_summary(timings[path], (50, 99), digits=3) for path in added},
        **{f"added_{path}": latency_summary(ms, (50, 99), digits=3) for path, ms in added.items()},
        "prediction_step": "time inside each request in intake's prediction step (cases.services.intake.router "
        "Router._answer_unanswered), unanswered less answered (where the step returns at once)",
        **{f"step_added_{path}": latency_summary(ms, (50, 99), digits=3) for path, ms in step_added.items()},
    }
    print(
        f"  intake, {len(sent)} requests each: answered p50 {result['answered']['p50_ms']:.2f} ms; a prediction adds "
        + "; ".join(
            f"{path} p50 {result[f'added_{path}']['p50_ms']:.2f} / p99 {result[f'added_{path}']['p99_ms']:.2f} ms "
            f"(its step in intake p50 {result[f'step_added_{path}']['p50_ms']:.2f} / "
            f"p99 {result[f'step_added_{path}']['p99_ms']:.2f} ms)"
            for path in added
        ),
        flush=True,
    )
    return result


# --- Report ---------------------------------------------------------------------------------------------------


def flat(small: float, large: float) -> bool:
    return large <= max(small * FLAT_RATIO, small + FLAT_SLACK_MIB)


def table_rows(sizes: list[dict[str, Any]], training: dict[str, Any] | None) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for result in sizes:
        tag = f"[{result['labels']:,} labels]"
        note = "" if result["labels"] >= BUDGET_LABELS else " (budget at 1M)"
        gen = result["generation"]
        rows.append(row(f"{tag} data: generation", f"{gen['seconds']:.0f} s ({gen['database_size']})"))
        for fmt, e in result["exports"].items():
            rows.append(
                row(
                    f"{tag} export {fmt} over gunicorn: records a second",
                    f"{e['records_per_second']:,} ({e['records']:,} in {e['seconds']:.1f} s, "
                    f"{e['bytes'] / 2**20:.0f} MiB)",
                    f">= {TARGET_EXPORT_RATE:,.0f}{note}",
                    verdict(e["records_per_second"] >= TARGET_EXPORT_RATE),
                )
            )
            rows.append(
                row(
                    f"{tag} export {fmt}: worker CPU / peak RSS growth",
                    f"{e['worker_cpu_us_per_record']:.1f} us a record / +{e['peak_growth_mib']:.1f} MiB "
                    f"(peak {e['peak_rss_mib']:.0f} MiB)",
                )
            )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for fmt in large["exports"]:
            a, b = small["exports"][fmt]["peak_growth_mib"], large["exports"][fmt]["peak_growth_mib"]
            rows.append(
                row(
                    f"export {fmt}: worker peak RSS growth, {small['labels']:,} vs {large['labels']:,}",
                    f"+{a:.1f} / +{b:.1f} MiB",
                    f"flat (within {FLAT_RATIO:g}x or {FLAT_SLACK_MIB:g} MiB)",
                    verdict(flat(a, b)),
                )
            )
    if training is not None:
        t, p = training["training"], training["prediction"]
        note = "" if training["labels"] >= BUDGET_TRAINING_LABELS else " (budget at 100k)"
        rows.append(
            row(
                f"train_model on {training['labels']:,} labels",
                f"{t['seconds']:.1f} s (held-out accuracy {t['accuracy']:.3f} on {t['n_held_out']:,})",
                f"< {TARGET_TRAINING_SECONDS:g} s{note}",
                verdict(t["seconds"] < TARGET_TRAINING_SECONDS),
            )
        )
        rows.append(
            row(
                f"a prediction (input_text + predict), {p['count']} calls: p50 / p99 / max",
                f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} / {p['max_ms']:.2f} ms",
                f"p99 < {TARGET_PREDICTION_MS:g} ms",
                verdict(p["p99_ms"] < TARGET_PREDICTION_MS),
            )
        )
        s, pc, sc = p["sklearn_predict_proba"], p["predict_only_cpu"], p["sklearn_predict_proba_cpu"]
        rows.append(
            row(
                "  the same through scikit-learn's predict_proba: p50 / p99 / max",
                f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} / {s['max_ms']:.2f} ms",
            )
        )
        rows.append(
            row(
                "  predict alone, thread CPU time p50 / p99: lean; scikit-learn",
                f"{pc['p50_ms']:.3f} / {pc['p99_ms']:.3f} ms; {sc['p50_ms']:.2f} / {sc['p99_ms']:.2f} ms",
            )
        )
        i = training["intake"]
        for path in ("lean", "sklearn"):
            a, step = i[f"added_{path}"], i[f"step_added_{path}"]
            rows.append(
                row(
                    f"a prediction at intake ({path}), {i['requests']} POSTs: whole POST added p50 / p99",
                    f"{a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms (answered POST p50 {i['answered']['p50_ms']:.2f} ms)",
                )
            )
            rows.append(
                row(
                    f"  intake's prediction step ({path}) added p50 / p99",
                    f"{step['p50_ms']:.2f} / {step['p99_ms']:.2f} ms",
                    f"< {TARGET_PREDICTION_MS:g} ms" if path == "lean" else "",
                    verdict(step["p99_ms"] < TARGET_PREDICTION_MS) if path == "lean" else "",
                )
            )
    return rows


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
