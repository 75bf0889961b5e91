"""bench/kpis.py's KPIs in this process: the hourly snapshots backfilled first, then
`metrics.kpis.category_kpis` over the window (a warm-up, the timed runs with their statements), each of its
pieces alone so every statement has a name, and EXPLAIN ANALYZE of the slowest statements.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common_measure import QueryLog, explain, logged_queries, sql_shape
from kpis_fixture import CATEGORY_SLUG, Fixture

if TYPE_CHECKING:
    from governance.models import Category


SLOW_STATEMENT_MS = 300.0  # a statement this slow is looked into (EXPLAIN printed), whatever the total
MIN_RUNS = 3  # timed runs (and MIN_REQUESTS requests) however long they take, before the time box may end them


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
