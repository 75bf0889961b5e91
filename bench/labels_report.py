"""bench/labels.py's report: the budgets of DESIGN.md it checks (the export's rate and flat memory, the
training time, the prediction's cost), and the table of figures against them.
"""

from __future__ import annotations

from typing import Any

from common import row, verdict

# DESIGN.md "Budgets".
TARGET_EXPORT_RATE = 20_000.0
BUDGET_LABELS = 1_000_000
TARGET_TRAINING_SECONDS = 120.0
BUDGET_TRAINING_LABELS = 100_000
TARGET_PREDICTION_MS = 5.0
FLAT_RATIO = 1.25  # memory is flat when the largest size's growth is within this ratio of the smallest's ...
FLAT_SLACK_MIB = 16.0  # ... or within this many MiB of it


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
