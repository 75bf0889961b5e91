"""Each KPI of a category over a window (DESIGN.md, KPIs), derived once from the window's parts.

Each figure is computed here, once, from the additive parts of `metrics.kpis.parts` (counts, sums and value
counts), which `metrics.kpis.rollup` sums from the hourly snapshots and reads live where they do not hold. A fixed
number of queries whatever the data size; Python only combines the few rows that come back. The JSON keys are
DESIGN.md's. The figures read over a window one at a time are in `metrics.kpis.single_figures`, all of them at
once in `metrics.kpis.all_figures`.

A rate with nothing to count is None (JSON null), not 0: "no override in the window" and "nothing was reviewed"
are different answers.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from cases.choices import Route
from governance.models import Category
from metrics.kpis.parts import Parts, percentile
from metrics.kpis.window import Window
from metrics.stats import wilson_interval
from reviews.agreement import AgreementFigures
from reviews.choices import Action

# The four-fifths rule: a value whose approval rate is under 0.8 of the best one's is flagged.
FOUR_FIFTHS = 0.8
FAIRNESS_MIN_N = 20
# Rubber-stamping (DESIGN.md, Time): approval >= 98 % over >= 50 decisions with a median under the queue's floor.
RUBBER_STAMP_APPROVAL = 0.98
RUBBER_STAMP_MIN_DECISIONS = 50
# The threshold advisor: candidate auto thresholds 0.50 .. 0.99, and the known outcomes it needs to advise.
ADVISOR_THRESHOLDS = tuple(round(0.50 + step / 100, 2) for step in range(50))
ADVISOR_MIN_KNOWN = 30


# --- small helpers ---


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _interval(successes: int, total: int) -> dict[str, Any]:
    """{n, rate, low, high}: a proportion with its 95 % Wilson interval (rate None when nothing was counted)."""
    low, high = wilson_interval(successes, total)
    return {"n": total, "rate": rate(successes, total), "low": low if total else None, "high": high if total else None}


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


def psi_from_counts(reference: list[int], current: list[int]) -> float | None:
    """Population stability index of two histograms of the same bins; None when either is empty.

    Empty bins get a small floor so the logarithm stays finite (as `metrics.stats.psi`)."""
    ref_total, cur_total = sum(reference), sum(current)
    if not ref_total or not cur_total:
        return None
    expected = [max(c / ref_total, 1e-4) for c in reference]
    actual = [max(c / cur_total, 1e-4) for c in current]
    return round(sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True)), 4)


# --- the figures, each from the parts ---


def case_figures(parts: Parts) -> dict[str, Any]:
    """volume, routes, auto_rate, escalation_rate, and how many cases waited in a queue."""
    routes = {route: parts.routes.get(route, 0) for route in Route.values}
    return {
        "volume": parts.volume,
        "routes": routes,
        "auto_rate": rate(routes[Route.AUTO], parts.volume),
        "escalation_rate": rate(parts.escalated, parts.volume),
        "escalated": parts.escalated,
        "waited": parts.waited,
    }


def decision_figures(parts: Parts) -> dict[str, Any]:
    """override_rate, audited_accuracy, shadow_agreement and the minutes people spent."""
    return {
        "override_rate": rate(parts.overridden, parts.verdicts),
        "verdicts": parts.verdicts,
        "overridden": parts.overridden,
        "audits": parts.audits,
        "confirmed": parts.confirmed,
        "audited_accuracy": _interval(parts.confirmed, parts.audits),
        "shadow_agreement": _interval(parts.shadow_agree, parts.shadow),
        "decisions": parts.decisions,
        "seconds_spent": parts.seconds,
        "timed_decisions": parts.timed,
        # What a reviewed case costs people, for the advisor's review hours (None when no time was recorded).
        "seconds_per_decision": parts.seconds / parts.timed if parts.timed else None,
    }


def resolution_figures(parts: Parts, window: Window) -> dict[str, Any]:
    """resolution_minutes {median, p90} of cases a person made final in the window (to three significant
    figures), and throughput_per_hour of all cases made final (auto or human) in it."""
    return {
        "resolution_minutes": {
            "median": percentile(parts.resolution_counts, 0.5),
            "p90": percentile(parts.resolution_counts, 0.9),
        },
        "resolved_by_people": parts.resolved,
        "throughput_per_hour": round(parts.final / window.hours, 4) if window.hours else None,
    }


def review_seconds_figures(parts: Parts) -> dict[str, Any]:
    """review_seconds {median, p90} of the decisions that recorded their time."""
    return {
        "median": _seconds(percentile(parts.seconds_counts, 0.5)),
        "p90": _seconds(percentile(parts.seconds_counts, 0.9)),
    }


def sensitive_label_figures(parts: Parts, labels: list[str]) -> dict[str, dict[str, Any]]:
    """For each sensitive label, false positive and false negative rates from the human verdicts. A reject counts
    as the model being wrong; the truth of a reject is unknown, so it enters the false positives of the label the
    model gave and no false negative."""
    result: dict[str, dict[str, Any]] = {}
    verdicts = list(parts.verdicts_by_label())
    for label in labels:
        said = false_pos = truth = false_neg = 0
        for action, model, human, n in verdicts:
            if model == label:
                said += n
                if action != Action.APPROVE and human != label:
                    false_pos += n
            if (action == Action.APPROVE and model == label) or (action == Action.CORRECT and human == label):
                truth += n
            if action == Action.CORRECT and human == label and model != label:
                false_neg += n
        result[label] = {
            "n": said,
            "false_positive_rate": rate(false_pos, said),
            "false_negative_rate": rate(false_neg, truth),
        }
    return result


def fairness_figures(parts: Parts) -> dict[str, Any]:
    """Per segment key, per value: how often the model's output acted as proposed among the window's cases made
    final, and the disparity ratio (lowest over highest rate among values with n >= 20), flagged under 0.8
    (the four-fifths rule)."""
    by_key: dict[str, dict[str, list[int]]] = {}
    for segment_json, (n, approved) in parts.segments.items():
        for key, value in json.loads(segment_json).items():
            tally = by_key.setdefault(str(key), {}).setdefault(_segment_value(value), [0, 0])
            tally[0] += n
            tally[1] += approved
    result: dict[str, Any] = {}
    for key, values in sorted(by_key.items()):
        listed: list[dict[str, Any]] = [
            {"value": value, "n": n, "approval_rate": rate(approved, n)}
            for value, (n, approved) in sorted(values.items())
        ]
        rates: list[float] = [
            v["approval_rate"] for v in listed if v["n"] >= FAIRNESS_MIN_N and v["approval_rate"] is not None
        ]
        ratio = (min(rates) / max(rates)) if len(rates) >= 2 and max(rates) > 0 else None
        result[key] = {
            "values": listed,
            "disparity_ratio": None if ratio is None else round(ratio, 4),
            "flag": ratio is not None and ratio < FOUR_FIFTHS,
        }
    return result


def _segment_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def reviewer_figures(
    parts: Parts,
    *,
    approval_at: float = RUBBER_STAMP_APPROVAL,
    min_decisions: int = RUBBER_STAMP_MIN_DECISIONS,
    kappas: AgreementFigures | None = None,
) -> list[dict[str, Any]]:
    """Per person deciding in the window: decisions, decisions per hour of recorded review time, median seconds,
    approval rate, kappa (their agreement over the double reviews they were part of, `kappas`; None without any)
    and the rubber-stamp flag: approval at or above `approval_at` over at least `min_decisions` with a median under
    the queue's floor."""
    per_person = kappas.reviewers if kappas is not None else {}
    result = []
    for username, row in sorted(parts.reviewers.items()):
        approval = rate(row["approvals"], row["decisions"])
        median_seconds = _seconds(percentile(row["seconds_counts"], 0.5))
        stamping = (
            row["decisions"] >= min_decisions
            and approval is not None
            and approval >= approval_at
            and median_seconds is not None
            and median_seconds < row["floor"]
        )
        result.append(
            {
                "username": username,
                "decisions": row["decisions"],
                "per_hour": round(row["decisions"] / (row["seconds"] / 3600), 2) if row["seconds"] else None,
                "median_seconds": median_seconds,
                "approval_rate": approval,
                "kappa": own.kappa if (own := per_person.get(username)) else None,
                "rubber_stamp": stamping,
                "floor_seconds": row["floor"],
            }
        )
    return result


def advisor_figures(
    parts: Parts, category: Category, window: Window, *, review_seconds_per_case: float | None
) -> list[Any]:
    """For each candidate auto threshold: the share of the window's cases it would let act on their own, the
    error rate among those whose right answer is known (human verdicts and audits) with its Wilson upper bound,
    and the review hours a day the cases below it would leave (bucketed by hundredths of confidence). A row with
    fewer than 30 known outcomes says so (`enough_data` false, no error rate) rather than guess."""
    per_bucket = {int(b): values for b, values in parts.buckets.items()}
    total = sum(n for n, _, _ in per_bucket.values())
    seconds = review_seconds_per_case or float(category.baseline_minutes_per_case or Decimal(0)) * 60
    result = []
    for threshold in ADVISOR_THRESHOLDS:
        above = [v for b, v in per_bucket.items() if b >= round(threshold * 100)]
        acting = sum(n for n, _, _ in above)
        right, wrong = sum(r for _, r, _ in above), sum(w for _, _, w in above)
        known = right + wrong
        enough = known >= ADVISOR_MIN_KNOWN
        _, upper = wilson_interval(wrong, known)
        below_per_day = (total - acting) / window.days if window.days else 0.0
        result.append(
            {
                "threshold": threshold,
                "would_act_share": rate(acting, total),
                "known": known,
                "enough_data": enough,
                "error_rate": rate(wrong, known) if enough else None,
                "error_rate_upper": round(upper, 4) if enough else None,
                "review_hours_per_day": round(below_per_day * seconds / 3600, 2),
            }
        )
    return result


def time_saved_minutes(category: Category, volume: int, seconds_spent: int) -> float:
    """The minutes the category's cases would have taken people without HITL Desk (its baseline per case), minus
    the minutes people spent on them."""
    return round(volume * float(category.baseline_minutes_per_case or Decimal(0)) - seconds_spent / 60, 2)
