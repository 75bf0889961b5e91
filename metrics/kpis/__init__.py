"""Every KPI of a category over a window (DESIGN.md, KPIs): the one module of KPI reads.

The dashboard, the metrics API, the snapshots and the alert rules all read their figures here, so a figure means
the same wherever it is shown. The package's rooms:
- `window`: the window a request names, and the spans read live;
- `conditions`: what each figure counts, as conditions on cases and decisions, and the cases behind a figure;
- `parts`: the additive parts the figures are made of, read live by a few grouped queries;
- `rollup`: a window's parts, summed from the hourly snapshots where they hold and read live elsewhere;
- `figures`: each KPI derived from the parts, once;
- `single_figures`: one KPI at a time over a window (alert rules, the pause trigger, snapshots), and the figures
  not made of parts (agreement, refusals, batch approvals, queues);
- `visibility`: whose reviewer figures a user sees;
- `all_figures`: every KPI at once (`category_kpis`), with what its figures are made of (`category_figures`).
"""

from datetime import UTC

from metrics.kpis.all_figures import category_figures, category_kpis
from metrics.kpis.conditions import FIGURES_BEHIND, HUMAN_FINAL, HUMAN_VERDICTS, MADE_FINAL, cases_behind
from metrics.kpis.figures import (
    ADVISOR_MIN_KNOWN,
    ADVISOR_THRESHOLDS,
    FAIRNESS_MIN_N,
    FOUR_FIFTHS,
    RUBBER_STAMP_APPROVAL,
    RUBBER_STAMP_MIN_DECISIONS,
    psi_from_counts,
    time_saved_minutes,
)
from metrics.kpis.parts import HISTOGRAM_BINS
from metrics.kpis.single_figures import (
    agreement,
    batch_decision_counts,
    case_counts,
    confidence_histograms,
    decision_counts,
    fairness,
    queues,
    refusal_counts,
    resolution,
    review_seconds,
    reviewers,
    sensitive_label_rates,
    sla_breaches,
    threshold_advisor,
)
from metrics.kpis.visibility import reviewers_visible_to, sees_every_reviewer
from metrics.kpis.window import DEFAULT_WINDOW, MAX_WINDOW, WINDOWS, Window

__all__ = [
    "ADVISOR_MIN_KNOWN",
    "ADVISOR_THRESHOLDS",
    "DEFAULT_WINDOW",
    "FAIRNESS_MIN_N",
    "FIGURES_BEHIND",
    "FOUR_FIFTHS",
    "HISTOGRAM_BINS",
    "HUMAN_FINAL",
    "HUMAN_VERDICTS",
    "MADE_FINAL",
    "MAX_WINDOW",
    "RUBBER_STAMP_APPROVAL",
    "RUBBER_STAMP_MIN_DECISIONS",
    "UTC",
    "WINDOWS",
    "Window",
    "agreement",
    "batch_decision_counts",
    "case_counts",
    "cases_behind",
    "category_figures",
    "category_kpis",
    "confidence_histograms",
    "decision_counts",
    "fairness",
    "psi_from_counts",
    "queues",
    "refusal_counts",
    "resolution",
    "review_seconds",
    "reviewers",
    "reviewers_visible_to",
    "sees_every_reviewer",
    "sensitive_label_rates",
    "sla_breaches",
    "threshold_advisor",
    "time_saved_minutes",
]
