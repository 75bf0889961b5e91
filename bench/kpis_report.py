"""bench/kpis.py's report: the budgets of DESIGN.md it checks, the table of figures against them (with the
query counts at the smallest and largest size, which must be equal), and the details: each KPI piece's time and
the plans of the slowest statements.
"""

from __future__ import annotations

from typing import Any

from common import row, verdict
from kpis_category_kpis import SLOW_STATEMENT_MS

# DESIGN.md "Budgets".
TARGET_KPI_SECONDS = 1.0
TARGET_PAGE_P95_MS = 1000.0
BUDGET_DECISIONS = 1_000_000


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
