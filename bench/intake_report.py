"""bench/intake.py's report: the budgets of DESIGN.md it checks, and the table of figures against them (the
project's absolute figures, the ratios to the floor, the scaling, the in-process rates and statement counts).
"""

from __future__ import annotations

from typing import Any

from common import print_rows, row, verdict

QUERY_RUNS = ("single_api", "bulk_api_500", "submit_cases_500")

# DESIGN.md "Budgets".
TARGET_P50_MS = 15.0
TARGET_P99_MS = 50.0
TARGET_SINGLE_RATIO = 0.5
TARGET_BULK_FLOOR_RATIO = 0.5
TARGET_SCALING = 1.6


# --- Report ---------------------------------------------------------------------------------------------------


def floor_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    versus = results["versus_floor"]
    medians, rounds = versus["median_ratios"], len(versus["rounds"])
    floor_single, floor_bulk = versus["floor_single"], versus["floor_bulk"]
    rows = [
        row(
            f"single intake / floor, req/s (median of {rounds} rounds)",
            f"{medians['single_rps']:.3f}x",
            f">= {TARGET_SINGLE_RATIO:g}x",
            verdict(medians["single_rps"] >= TARGET_SINGLE_RATIO),
        ),
        row("single intake p50 / floor p50 (x slower)", f"{medians['single_p50_slower']:.2f}x"),
        row("single intake p99 / floor p99 (x slower)", f"{medians['single_p99_slower']:.2f}x"),
        row(
            f"bulk intake / floor bulk, cases/s (median of {rounds} rounds)",
            f"{medians['bulk_cases_per_s']:.3f}x",
            f">= {TARGET_BULK_FLOOR_RATIO:g}x",
            verdict(medians["bulk_cases_per_s"] >= TARGET_BULK_FLOOR_RATIO),
        ),
        row(
            "floor: single req/s, p50 / p99",
            f"{floor_single['requests_per_s']:.1f} req/s, "
            f"{floor_single['p50_ms']:.2f} / {floor_single['p99_ms']:.2f} ms",
        ),
        row("floor: bulk (500 per request)", f"{floor_bulk['cases_per_s']:.0f} cases/s"),
    ]
    scaling = results.get("scaling")
    if scaling:
        for name in ("project", "floor"):
            target = f"> {TARGET_SCALING:g}x" if name == "project" else ""
            median = scaling[name]["median_ratio"]
            rows.append(
                row(
                    f"{name}: 2 workers / 1 worker, req/s ({scaling['clients']} clients, median)",
                    f"{median:.2f}x",
                    target,
                    verdict(median > TARGET_SCALING) if target else "",
                )
            )
    return rows


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    single, unauthenticated = results["single"], results["floor_401"]
    api, svc, orm = results["bulk_api"], results["submit_cases"], results["bulk_create"]
    orm_ratio = results["ratios"]["bulk_api_over_bulk_create"]
    rows_orm = results["bulk_create_same_rows"]
    same_rows_ratio = results["ratios"]["bulk_api_over_bulk_create_same_rows"]
    rows = [
        row(
            "single intake p50 (client RTT)",
            f"{single['p50_ms']:.2f} ms",
            f"< {TARGET_P50_MS:g} ms",
            verdict(single["p50_ms"] < TARGET_P50_MS),
        ),
        row("single intake p90 (client RTT)", f"{single['p90_ms']:.2f} ms"),
        row(
            "single intake p99 (client RTT)",
            f"{single['p99_ms']:.2f} ms",
            f"< {TARGET_P99_MS:g} ms",
            verdict(single["p99_ms"] < TARGET_P99_MS),
        ),
        row("single intake max (client RTT)", f"{single['max_ms']:.2f} ms"),
        row("single intake throughput", f"{single['requests_per_s']:.1f} req/s"),
        *floor_rows(results),
        row(
            "401 without DB, p50 / p99",
            f"{unauthenticated['p50_ms']:.2f} / {unauthenticated['p99_ms']:.2f} ms",
        ),
        row("bulk API (500 per request)", f"{api['cases_per_s']:.0f} cases/s"),
        row("submit_cases in-process (500 per call)", f"{svc['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create (500 per call)", f"{orm['cases_per_s']:.0f} cases/s"),
        row("plain bulk_create of the same rows (case+history+audit)", f"{rows_orm['cases_per_s']:.0f} cases/s"),
        # The budget's peer is the floor (above); these two say how far the API is from the ORM alone.
        row("bulk API / bulk_create of the same rows", f"{same_rows_ratio:.3f}"),
        row("bulk API / bulk_create of the case rows only", f"{orm_ratio:.3f}"),
        row("submit_cases / bulk_create", f"{results['ratios']['submit_cases_over_bulk_create']:.3f}"),
    ]
    rows.extend(
        row(f"SQL statements (+ BEGIN/COMMIT): {name}", str(results["queries"][name]["statements"]))
        for name in QUERY_RUNS
    )
    split = results["in_process"]
    single_split = split["single_api_inprocess"]
    rows.append(
        row(
            f"single intake in-process p50 ({split['cases_in_table']} cases): total / SQL",
            f"{single_split['total_ms_p50']:.2f} / {single_split['sql_ms_p50']:.2f} ms",
        )
    )
    rows.extend(
        row(f"{name} in-process: total / SQL", f"{split[name]['total_ms']:.0f} / {split[name]['sql_ms']:.0f} ms")
        for name in ("bulk_api_500", "submit_cases_500")
    )
    return rows


def print_table(results: dict[str, Any], rows: list[dict[str, str]]) -> None:
    single = results["single"]
    print_rows(rows)
    print(
        "\nLatencies are client round trips on loopback (request sent -> last byte read): an upper bound of\n"
        f"server-side time. gunicorn's sync worker closed the connection after {single['closed_by_server']} of "
        f"{single['count']} responses,\nso each of those requests also paid a loopback TCP connect. The project's "
        "single-intake figures are\nall its rounds together; the ratios are per round (project and floor on the same "
        "payloads), then their median."
    )
