"""bench/review.py's report: the budgets of DESIGN.md it checks, EXPLAIN ANALYZE of the slowest statements
of each page and of claim-next's candidates, the table of figures against the budgets, and the plans printed
(all of them with --explain, else those of a missed target).
"""

from __future__ import annotations

from typing import Any

from common import row, verdict
from common_measure import explain, explain_queryset
from review_fixture import Fixture

# DESIGN.md "Budgets".
TARGET_PAGE_P95_MS = 300.0
# DESIGN.md: p99 under 30 ms with 20 reviewers each claiming about once a second, under 200 ms when 20 claim at
# the same instant.
TARGET_CLAIM_PACED_P99_MS = 30.0
TARGET_CLAIM_BURST_P99_MS = 200.0
BUDGET_SIZE = 1_000_000


# --- Where the time goes --------------------------------------------------------------------------------------


def explain_all(fx: Fixture, pages: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    from django.utils import timezone

    from cases.models import Queue
    from reviews.services import claimable_in

    plans: dict[str, list[dict[str, str]]] = {}
    for name in ("queue_page", "review_page"):
        plans[name] = [
            {"sql": sql, "plan": explain(sql)}
            for sql in pages[name]["slowest_sql"]
            if sql.lstrip().upper().startswith("SELECT")
        ]
    queue = Queue.objects.get(pk=fx.queues["quick"])
    candidates = claimable_in(queue, timezone.now()).select_for_update(skip_locked=True, of=("self",))[:1]
    plans["claim_next_candidates"] = [explain_queryset(candidates)]
    return plans


# --- Report ---------------------------------------------------------------------------------------------------


def table_rows(sizes: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    smallest = sizes[0]
    for result in sizes:
        n = result["cases"]
        tag = f"{n:,} cases"
        at_budget = n >= BUDGET_SIZE
        rows.append(row(f"[{tag}] data generation", f"{result['generation']['seconds']:.0f} s"))
        for key, title in (("queue_page", "queue page"), ("review_page", "review page")):
            page = result[key]
            qmin, qmax = page["queries_min"], page["queries_max"]
            count = str(qmax) if qmin == qmax else f"{qmin}-{qmax}"
            if result is smallest:
                target, outcome = ("constant", verdict(qmin == qmax)) if len(sizes) > 1 else ("", "")
            else:
                base = smallest[key]["queries_max"]
                target, outcome = f"<= {base} (as at {smallest['cases']:,})", verdict(qmax <= base)
            rows.append(row(f"[{tag}] {title}: SQL queries per request", count, target, outcome))
            target = f"< {TARGET_PAGE_P95_MS:g} ms" + ("" if at_budget else " (budget at 1M)")
            rows.append(
                row(
                    f"[{tag}] {title}: p50 / p95 / max (SQL p50)",
                    f"{page['p50_ms']:.1f} / {page['p95_ms']:.1f} / {page['max_ms']:.1f} ms "
                    f"({page['sql']['p50_ms']:.1f} ms)",
                    target,
                    verdict(page["p95_ms"] < TARGET_PAGE_P95_MS),
                )
            )
        claims = result["claim_next"]
        alone, contended, check = claims["alone"], claims["contended"], claims["contended"]["verification"]
        rows.append(
            row(
                f"[{tag}] claim-next alone: p50 / p99 (SQL p50)",
                f"{alone['p50_ms']:.1f} / {alone['p99_ms']:.1f} ms ({alone['sql']['p50_ms']:.1f} ms)",
            )
        )
        rows.append(
            row(
                f"[{tag}] claim-next, {contended['threads']} at the same instant: p50 / p99 / max",
                f"{contended['p50_ms']:.1f} / {contended['p99_ms']:.1f} / {contended['max_ms']:.1f} ms",
                f"p99 < {TARGET_CLAIM_BURST_P99_MS:g} ms",
                verdict(contended["p99_ms"] < TARGET_CLAIM_BURST_P99_MS),
            )
        )
        rows.append(
            row(
                f"[{tag}] claim-next, {contended['threads']} at the same instant: SQL p50 / p99",
                f"{contended['sql']['p50_ms']:.1f} / {contended['sql']['p99_ms']:.1f} ms",
            )
        )
        rows.append(
            row(
                f"[{tag}] claim-next: double claims / errors",
                f"{len(check['duplicate_ids'])} / {len(check['errors'])} in {check['claimed']} claims",
                "0 and checks pass",
                verdict(check["ok"]),
            )
        )
        if "two_queues" in claims:
            two = claims["two_queues"]
            rows.append(
                row(
                    f"[{tag}] claim-next in two queues at once: p50 / p99",
                    f"{two['p50_ms']:.1f} / {two['p99_ms']:.1f} ms",
                    f"p99 < {TARGET_CLAIM_BURST_P99_MS:g} ms",
                    verdict(two["p99_ms"] < TARGET_CLAIM_BURST_P99_MS and two["verification"]["ok"]),
                )
            )
            for name, phase in (("one queue", contended), ("two queues", two)):
                w = phase["lock_waits"]
                rows.append(
                    row(
                        f"[{tag}] claim-next, {name}: samples with a claim waiting on a row lock (any lock)",
                        f"{w['samples_with_a_claim_waiting']} ({w['samples_with_a_lock_wait']}) of {w['samples']} "
                        f"(most at once: {w['most_sessions_waiting']}; {w['sessions_waiting_by_lock'] or 'none'})",
                        "0 claims",
                        verdict(w["samples_with_a_claim_waiting"] == 0),
                    )
                )
        if "contended_threads" in claims:
            procs = claims["contended_threads"]
            rows.append(
                row(
                    f"[{tag}] claim-next, {procs['threads']} threads back to back: p50 / p99 (SQL p99)",
                    f"{procs['p50_ms']:.1f} / {procs['p99_ms']:.1f} ms ({procs['sql']['p99_ms']:.1f} ms)",
                    "(info)",
                )
            )
            rows.append(
                row(
                    f"[{tag}] claim-next threads: double claims / errors",
                    f"{len(procs['verification']['duplicate_ids'])} / {len(procs['verification']['errors'])} "
                    f"in {procs['verification']['claimed']} claims",
                    "0 and checks pass",
                    verdict(procs["verification"]["ok"]),
                )
            )
        if "paced" in claims:
            paced = claims["paced"]
            rows.append(
                row(
                    f"[{tag}] claim-next, {paced['threads']} pausing ~{paced['think_ms']:g} ms: p50 / p99",
                    f"{paced['p50_ms']:.1f} / {paced['p99_ms']:.1f} ms (SQL p99 {paced['sql']['p99_ms']:.1f} ms)",
                    f"p99 < {TARGET_CLAIM_PACED_P99_MS:g} ms",
                    verdict(paced["p99_ms"] < TARGET_CLAIM_PACED_P99_MS),
                )
            )
            rows.append(
                row(
                    f"[{tag}] claim-next paced: double claims / errors",
                    f"{len(paced['verification']['duplicate_ids'])} / {len(paced['verification']['errors'])} "
                    f"in {paced['verification']['claimed']} claims",
                    "0 and checks pass",
                    verdict(paced["verification"]["ok"]),
                )
            )
    return rows


def print_explains(sizes: list[dict[str, Any]], only_missed: bool, rows: list[dict[str, str]]) -> None:
    missed = {r["metric"] for r in rows if r["result"] == "MISS"}
    for result in sizes:
        tag = f"[{result['cases']:,} cases]"
        for name, plans in result["explain"].items():
            title = name.replace("_", " ")
            if only_missed and not any(m.startswith(tag) and title.split(" ")[0] in m for m in missed):
                continue
            for plan in plans:
                print(f"\n--- {tag} EXPLAIN ANALYZE, {title} ---\n{plan['sql'][:600]}\n{plan['plan']}")
