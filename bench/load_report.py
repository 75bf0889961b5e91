"""bench/load.py's report: the budgets of DESIGN.md it checks (zero 5xx, every case stored once, memory
flat over the requests, 2 workers against 1) and the table of figures against them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from common import row, verdict
from load_processes import FLAT_SLACK_MIB

# DESIGN.md "Budgets".
TARGET_REQUESTS = 100_000
TARGET_SCALING = 1.6


# --- Report ----------------------------------------------------------------------------------------------------


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    mixed, checks = results["mixed"], results["checks"]
    statuses = Counter({int(k): v for k, v in results["statuses"].items()})
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    no_answer = statuses.get(0, 0)
    cases, decisions, memory = checks["cases"], checks["decisions"], mixed["memory"]
    idem = mixed["checks"]
    bad_idem = sum(n for k, n in idem.items() if k.endswith("bad"))
    rows = [
        row(
            "mixed phase: requests",
            f"{mixed['requests']:,} in {mixed['seconds'] / 60:.1f} min ({mixed['requests_per_s']:.0f}/s, "
            f"{mixed['workers']} workers, {mixed['users']} users)",
            f">= {TARGET_REQUESTS:,} (10 min)",
            verdict(mixed["requests"] >= TARGET_REQUESTS),
        ),
        row("5xx responses (all phases)", str(server_errors), "0", verdict(server_errors == 0)),
        row(
            "unexpected answers (4xx, no answer, broken promise)",
            f"{results['unexpected']} (no answer: {no_answer})",
            "0",
            verdict(results["unexpected"] == 0),
        ),
        row(
            "submitted cases stored exactly once",
            f"{cases['submitted']:,} submitted, {cases['stored']:,} stored; missing {cases['missing']}, "
            f"extra {cases['extra']}, twice {cases['stored_more_than_once']}",
            "all once, nothing else",
            verdict(cases["exactly_once"]),
        ),
        row(
            "one 201/created per case (client)",
            f"{results['created_responses']:,} for {cases['submitted']:,} cases; twice: {results['created_twice']}",
            "= cases",
            verdict(results["created_responses"] == cases["submitted"] and not results["created_twice"]),
        ),
        row(
            "idempotency (repeats, bulk repeats, concurrent pairs)",
            ", ".join(f"{k} {n}" for k, n in idem.items()) or "none",
            "no bad",
            verdict(bad_idem == 0),
        ),
        row(
            "one case.routed audit event per case",
            f"{cases['cases_without_exactly_one_routed_event']} cases without exactly one",
            "0",
            verdict(cases["cases_without_exactly_one_routed_event"] == 0),
        ),
        row(
            "human decisions stored = decisions answered 200",
            f"{sum(decisions['stored'].values()):,} stored, {sum(decisions['client'].values()):,} answered",
            "equal, per action",
            verdict(decisions["match"]),
        ),
        row(
            "audit chain (manage.py verify_audit)",
            checks["verify_audit"]["output"].splitlines()[-1][:90] if checks["verify_audit"]["output"] else "",
            "OK",
            verdict(checks["verify_audit"]["ok"]),
        ),
        row(
            "deadlocks detected by PostgreSQL",
            str(checks["database"]["deadlocks"]),
            "0",
            verdict(checks["database"]["deadlocks"] == 0),
        ),
        row(
            "categories paused by the pause rule (info)",
            ", ".join(slug for slug, c in checks["database"]["categories"].items() if c["paused"]) or "none",
        ),
        row(
            "RQ jobs: succeeded / failed / left",
            f"{checks['rq']['succeeded']:,} / {checks['rq']['failed']} / {checks['rq']['left_in_queue']}",
            "0 failed, drained",
            verdict(checks["rq"]["failed"] == 0 and checks["rq"]["drained"]),
        ),
    ]
    for pid, w in memory["workers"].items():
        rows.append(
            row(
                f"web worker {pid} RSS: start / at {memory['baseline_at_requests']:,} req / end",
                f"{w['start_mib']} / {w['baseline_mib']} / {w['end_mib']} MiB ({w['growth_from_baseline_mib']:+} MiB)",
                f"flat (<= +{FLAT_SLACK_MIB:g} MiB)",
                verdict(w["growth_from_baseline_mib"] is not None and w["growth_from_baseline_mib"] <= FLAT_SLACK_MIB),
            )
        )
    if not memory["same_workers_throughout"]:
        rows.append(row("web workers: the same from start to end", "no (a worker was replaced)", "yes", "MISS"))
    latency = mixed["latency_ms"]
    for name in ("intake", "bulk", "queue next", "decide", "cases of a queue", "metrics"):
        if name in latency:
            lat = latency[name]
            rows.append(
                row(
                    f"mixed: {name} p50 / p95 / p99",
                    f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']} ms ({lat['count']:,})",
                )
            )
    scaling = results.get("scaling")
    if scaling:
        median = scaling["median_per_s"]
        rows.append(
            row(
                "intake, 1 worker (median)",
                f"{median['1_workers']:.1f} cases/s "
                f"({', '.join(str(v) for v in scaling['created_per_s']['1_workers'])})",
            )
        )
        rows.append(
            row(
                "intake, 2 workers (median)",
                f"{median['2_workers']:.1f} cases/s "
                f"({', '.join(str(v) for v in scaling['created_per_s']['2_workers'])})",
            )
        )
        ratio = scaling["ratio"]
        rows.append(
            row(
                "intake: 2 workers / 1 worker",
                f"{ratio:.2f}x" if ratio else "n/a",
                f"> {TARGET_SCALING:g}x",
                verdict(bool(ratio) and ratio > TARGET_SCALING),
            )
        )
    return rows
