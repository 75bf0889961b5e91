"""bench/sweep.py's report: the budgets of DESIGN.md it checks, the table of figures against them, where the
first sweep's time went by phase with its slowest statements, and the plans.
"""

from __future__ import annotations

from typing import Any

from common import row, verdict
from sweep_fixture import Mix

# DESIGN.md "Budgets".
TARGET_SECONDS = 2.0
TARGET_IDLE_SECONDS = 0.2
BUDGET_OPEN = 1_000_000
BUDGET_OVERDUE = 10_000


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
