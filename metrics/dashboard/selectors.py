"""The dashboard's reads: a category's KPIs over a window, their trends from the hourly snapshots, the model
versions side by side, and every figure's link to the cases behind it.

The page costs a fixed number of queries whatever the data size: the KPIs (`kpis.category_figures`, one
aggregate per figure), one grouped query over the snapshots (`trends`), one annotated query over the model
versions and one for the queue ids. Python only shapes the few rows that come back (a bucket, a bin, a segment, a
reviewer or a threshold each) into what the template and the charts show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cases.choices import Route
from cases.models import Queue
from governance.choices import ModelStatus
from governance.models import Category, ModelVersion
from governance.permissions import can_change_category
from metrics import kpis
from metrics.dashboard.bands import (
    ESCALATION_HEALTHY,
    ESCALATION_LIMIT,
    NO_BAND,
    OVERRIDE_BAND,
    Judgement,
    judge_accuracy,
    judge_drift,
    judge_escalation,
    judge_override,
    judge_time_saved,
)
from metrics.dashboard.links import cases_url
from metrics.dashboard.trends import ROUTE_ORDER, Sparkline, Trend, ratio_of, snapshot_trend, sparkline
from metrics.kpis.parts import VERSION_FIELDS
from metrics.selectors import rate_with_interval

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# The active version first, the canary beside it, then the versions that do not act yet.
STATUS_ORDER: dict[str, int] = {
    ModelStatus.ACTIVE: 0,
    ModelStatus.CANARY: 1,
    ModelStatus.SHADOW: 2,
    ModelStatus.REGISTERED: 3,
}


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: str
    detail: str
    url: str
    judgement: Judgement
    band: str
    spark: Sparkline
    no_trend: str = "no trend yet"


def _pct(rate: float | None, digits: int = 1) -> str:
    return "—" if rate is None else f"{rate * 100:.{digits}f} %"


def _span(low: float, high: float) -> str:
    return f"{low * 100:.0f}–{high * 100:.0f} %"


def _minutes_text(minutes: float) -> str:
    hours = minutes / 60
    return f"{hours:,.1f} h" if abs(hours) >= 1 else f"{minutes:,.0f} min"


def _minutes_or_dash(minutes: float | None) -> str:
    return "—" if minutes is None else _minutes_text(minutes)


def tiles(
    category: Category, window: kpis.Window, figures: dict[str, Any], counts: dict[str, Any], trend: Trend
) -> list[Tile]:
    """The headline figures, each with its count, its band, its trend and the cases behind it."""
    series = trend.series
    accuracy = figures["audited_accuracy"]
    pause_rate = float(category.policy.pause_rejection_rate)
    accuracy_detail = (
        f"{counts['confirmed']} of {counts['audits']} audits confirmed; "
        f"95 % CI {_span(accuracy['low'], accuracy['high'])}"
        if accuracy["n"]
        else "no audits"
    )
    return [
        Tile(
            "volume",
            "Volume",
            f"{figures['volume']:,}",
            f"cases created; {figures['throughput_per_hour'] or 0:.1f} made final per hour",
            cases_url(category, "created", window),
            NO_BAND,
            "",
            sparkline([float(v) if v is not None else None for v in series["volume"]]),
        ),
        Tile(
            "auto_rate",
            "Auto rate",
            _pct(figures["auto_rate"]),
            f"{counts['auto']:,} of {counts['volume']:,} acted on their own",
            cases_url(category, "created", window, route__exact=Route.AUTO),
            NO_BAND,
            "",
            sparkline(series["auto_rate"]),
        ),
        Tile(
            "override_rate",
            "Override rate",
            _pct(figures["override_rate"]),
            f"{counts['overridden']:,} of {counts['verdicts']:,} human verdicts corrected or rejected",
            cases_url(category, "overridden", window),
            judge_override(figures["override_rate"]),
            f"Healthy {_span(*OVERRIDE_BAND)}.",
            sparkline(series["override_rate"], OVERRIDE_BAND),
        ),
        Tile(
            "escalation_rate",
            "Escalation rate",
            _pct(figures["escalation_rate"]),
            f"{counts['escalated']:,} of {counts['volume']:,} went to escalation or an expert",
            cases_url(category, "escalated", window),
            judge_escalation(figures["escalation_rate"]),
            f"Healthy under {ESCALATION_HEALTHY * 100:.0f} %, at most {ESCALATION_LIMIT * 100:.0f} %.",
            sparkline(series["escalation_rate"], (0.0, ESCALATION_HEALTHY)),
        ),
        Tile(
            "time_saved_minutes",
            "Time saved",
            _minutes_text(figures["time_saved_minutes"]),
            f"{category.baseline_minutes_per_case} min a case baseline, {counts['seconds_spent'] / 3600:,.1f} h spent",
            cases_url(category, "created", window),
            judge_time_saved(figures["time_saved_minutes"], figures["volume"]),
            "",
            sparkline(series["time_saved_minutes"]),
        ),
        Tile(
            "audited_accuracy",
            "Audited accuracy",
            _pct(accuracy["rate"]),
            accuracy_detail,
            cases_url(category, "audited", window),
            judge_accuracy(accuracy, pause_rate),
            f"Healthy from {(1 - pause_rate) * 100:.0f} % (the pause rule's {pause_rate * 100:.0f} %).",
            sparkline(series["audited_accuracy"], (1 - pause_rate, 1.0)),
        ),
        Tile(
            "resolution_minutes",
            "Resolution time",
            _minutes_or_dash(figures["resolution_minutes"]["median"]),
            f"median to a person's final word; p90 {_minutes_or_dash(figures['resolution_minutes']['p90'])}, "
            f"{counts['resolved_by_people']:,} cases",
            cases_url(category, "resolved", window),
            NO_BAND,
            "",
            Sparkline(path=""),
            "no trend: medians of hours do not add up to a day's",
        ),
        Tile(
            "sla_breach_rate",
            "SLA breach rate",
            _pct(figures["sla_breach_rate"]),
            f"{counts['breaches']:,} breaches of {counts['waited']:,} cases that waited",
            cases_url(category, "breached", window),
            NO_BAND,
            "",
            sparkline(series["sla_breach_rate"]),
        ),
    ]


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersion
    cases: int
    auto: dict[str, Any]
    overridden: dict[str, Any]
    flagged: dict[str, Any]
    shadow: dict[str, Any]
    url: str


def model_versions(category: Category, window: kpis.Window, counts: dict[int, dict[str, int]]) -> list[VersionRow]:
    """Each version of the category that is not retired, with its figures over the window (`counts`, from the
    KPIs' parts; one query for the versions): a canary beside the active version, and shadow agreement for a
    version that has not acted yet."""
    versions = ModelVersion.objects.filter(category=category).exclude(status=ModelStatus.RETIRED)
    rows = sorted(versions, key=lambda v: (STATUS_ORDER.get(v.status, 99), v.name, v.version))
    none = dict.fromkeys(VERSION_FIELDS, 0)
    result = []
    for version in rows:
        n = counts.get(version.pk, none)
        result.append(
            VersionRow(
                version=version,
                cases=n["cases"],
                auto=rate_with_interval(n["auto"], n["cases"]),
                overridden=rate_with_interval(n["overridden"], n["reviewed"]),
                flagged=rate_with_interval(n["flagged"], n["audited"]),
                shadow=rate_with_interval(n["shadow_agree"], n["shadow_total"]),
                url=cases_url(category, "created", window, model_version=str(version.pk)),
            )
        )
    return result


@dataclass
class Dashboard:
    """Everything the page shows for one category and window, and the data its charts draw."""

    category: Category
    window: kpis.Window
    figures: dict[str, Any]
    counts: dict[str, Any]
    trend: Trend
    tiles: list[Tile]
    routes: list[dict[str, Any]]
    histogram: list[dict[str, Any]]
    drift: Judgement
    queues: list[dict[str, Any]]
    fairness: list[dict[str, Any]]
    reviewers: list[dict[str, Any]]
    versions: list[VersionRow]
    advisor: list[dict[str, Any]]
    may_adopt: bool
    chart_data: dict[str, Any] = field(default_factory=dict)

    @property
    def has_kappa(self) -> bool:
        return any(row["kappa"] is not None for row in self.reviewers)


def dashboard(category: Category, window: kpis.Window, *, user: User | AnonymousUser) -> Dashboard:
    """The dashboard of `category` over `window` as `user` may see it (their reviewer rows, their advisor forms)."""
    figures, counts = kpis.category_figures(category, window, user=user)
    trend = snapshot_trend(category, window)
    volume = figures["volume"]
    routes = [
        {
            "route": route,
            "label": Route(route).label,
            "n": figures["routes"][route],
            "share": ratio_of(figures["routes"][route], volume),
            "url": cases_url(category, "created", window, route__exact=route),
        }
        for route in ROUTE_ORDER
    ]
    histogram = [
        {
            "bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}",
            "low": f"{b / 10:.1f}",
            "n": n,
            "previous": counts["previous_histogram"][b],
            "url": cases_url(category, "created", window, confidence=f"{b / 10:.1f}-{(b + 1) / 10:.1f}"),
        }
        for b, n in enumerate(figures["confidence_histogram"])
    ]
    queue_ids = dict(Queue.objects.filter(category=category).values_list("slug", "pk"))
    queue_rows = [
        {
            **queue,
            "oldest": _age_text(queue["oldest_age_seconds"]),
            "url": cases_url(category, None, None, queue=str(queue_ids[queue["slug"]]), waiting="yes"),
        }
        for queue in figures["queues"]
    ]
    fairness_rows = [_fairness_row(category, window, key, entry) for key, entry in figures["fairness"].items()]
    reviewer_rows = [
        {**row, "url": cases_url(category, "reviewed", window, kpi_reviewer=row["username"])}
        for row in figures["reviewers"]
    ]
    may_adopt = can_change_category(user, category)
    advisor = [_advisor_row(category, window, row, may_adopt=may_adopt) for row in figures["threshold_advisor"]]
    board = Dashboard(
        category=category,
        window=window,
        figures=figures,
        counts=counts,
        trend=trend,
        tiles=tiles(category, window, figures, counts, trend),
        routes=routes,
        histogram=histogram,
        drift=judge_drift(figures["drift_psi"]),
        queues=queue_rows,
        fairness=fairness_rows,
        reviewers=reviewer_rows,
        versions=model_versions(category, window, counts["versions"]),
        advisor=advisor,
        may_adopt=may_adopt,
    )
    board.chart_data = _chart_data(board)
    return board


def _advisor_row(category: Category, window: kpis.Window, row: dict[str, Any], *, may_adopt: bool) -> dict[str, Any]:
    """An advisor row, with whether this user may adopt it here and, where not, why in words. A row the service
    would refuse gets no form: too little data to advise, the threshold the policy has, or one at or below the
    review threshold (a policy keeps review < auto)."""
    policy = category.policy
    current = abs(row["threshold"] - float(policy.auto_threshold)) < 1e-9
    note = ""
    if not row["enough_data"]:
        note = f"Too little data: {row['known']} known outcomes, {kpis.ADVISOR_MIN_KNOWN} needed."
    elif row["threshold"] <= float(policy.review_threshold):
        note = f"At or below the review threshold ({float(policy.review_threshold):.2f})."
    return {
        **row,
        "current": current,
        "note": note,
        "adoptable": may_adopt and not current and not note,
        "url": cases_url(category, "created", window, confidence=f"{row['threshold']:.2f}-"),
    }


def _fairness_row(category: Category, window: kpis.Window, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One segment key: its values with their approval rates and links, and the four-fifths line (0.8 of the best
    rate among values with enough cases, which the disparity ratio compares)."""
    rated = [v["approval_rate"] for v in entry["values"] if v["n"] >= kpis.FAIRNESS_MIN_N and v["approval_rate"]]
    line = kpis.FOUR_FIFTHS * max(rated) if rated else None
    values = [
        {
            **value,
            "enough": value["n"] >= kpis.FAIRNESS_MIN_N,
            "under_line": line is not None
            and value["n"] >= kpis.FAIRNESS_MIN_N
            and value["approval_rate"] is not None
            and value["approval_rate"] < line,
            "url": cases_url(category, "final", window, segment=f"{key}:{value['value']}"),
        }
        for value in entry["values"]
    ]
    return {"key": key, "values": values, "ratio": entry["disparity_ratio"], "flag": entry["flag"], "line": line}


def _age_text(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _chart_data(board: Dashboard) -> dict[str, Any]:
    """What dashboard.js draws, as plain JSON (`json_script`): the same numbers as the page's tables."""
    trend = board.trend
    return {
        "routes": {
            "labels": trend.labels,
            "snapshots": trend.snapshots,
            "series": [
                {"route": route, "label": Route(route).label, "data": trend.routes[route]} for route in ROUTE_ORDER
            ],
        },
        "histogram": {
            "labels": [row["bin"] for row in board.histogram],
            "current": [row["n"] for row in board.histogram],
            "previous": [row["previous"] for row in board.histogram],
            "urls": [row["url"] for row in board.histogram],
        },
        "queues": {
            "labels": [row["slug"] for row in board.queues],
            "depth": [row["depth"] for row in board.queues],
            "oldest": [row["oldest"] for row in board.queues],
            "overdue": [row["overdue"] for row in board.queues],
            "urls": [row["url"] for row in board.queues],
        },
        "fairness": [
            {
                "key": row["key"],
                "labels": [v["value"] for v in row["values"]],
                "rates": [v["approval_rate"] for v in row["values"]],
                "n": [v["n"] for v in row["values"]],
                "line": row["line"],
                "urls": [v["url"] for v in row["values"]],
            }
            for row in board.fairness
        ],
        "advisor": {
            "labels": [f"{row['threshold']:.2f}" for row in board.advisor],
            "would_act": [row["would_act_share"] for row in board.advisor],
            "error": [row["error_rate"] for row in board.advisor],
            "upper": [row["error_rate_upper"] for row in board.advisor],
            "current": f"{float(board.category.policy.auto_threshold):.2f}",
        },
        "versions": {
            "labels": [row.version.label for row in board.versions],
            "overridden": [row.overridden["rate"] if row.overridden["n"] else None for row in board.versions],
            "flagged": [row.flagged["rate"] if row.flagged["n"] else None for row in board.versions],
            "shadow": [row.shadow["rate"] if row.shadow["n"] else None for row in board.versions],
        },
    }


__all__ = ["Dashboard", "dashboard"]
