"""Whether a dashboard figure is healthy: the bands of DESIGN.md (KPIs), said in words and a colour.

Each judgement is a pure function of the figure (and, for audited accuracy, the category's own pause rule), so the
words on the page and the tests read the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The healthy bands of DESIGN.md (KPIs): an override rate over 30 % says the model needs work, under 2 % that
# people review too much; escalations are healthy under 15 % and too many past 20 %.
OVERRIDE_BAND = (0.02, 0.30)
ESCALATION_HEALTHY, ESCALATION_LIMIT = 0.15, 0.20
DRIFT_PSI = 0.2  # DESIGN.md: PSI >= 0.2 is drift


@dataclass(frozen=True)
class Judgement:
    """What the page says about a figure: `state` (ok, watch, bad, none: the colour) and the words for it."""

    state: str
    words: str


def judge_override(rate: float | None) -> Judgement:
    low, high = OVERRIDE_BAND
    if rate is None:
        return Judgement("none", "No human verdicts in the window.")
    if rate > high:
        return Judgement("bad", "Above the band: the model needs work.")
    if rate < low:
        return Judgement("watch", "Below the band: people may be reviewing too much.")
    return Judgement("ok", "Inside the band.")


def judge_escalation(rate: float | None) -> Judgement:
    if rate is None:
        return Judgement("none", "No cases in the window.")
    if rate > ESCALATION_LIMIT:
        return Judgement("bad", "Above the band: too much goes up to managers and experts.")
    if rate > ESCALATION_HEALTHY:
        return Judgement("watch", "Near the limit.")
    return Judgement("ok", "Inside the band.")


def judge_accuracy(interval: dict[str, Any], pause_rate: float) -> Judgement:
    """Audited accuracy against the category's own pause rule: refusals at `pause_rate` pause automation, so an
    accuracy under 1 - pause_rate is where the audits push towards a pause. The interval says how sure that is."""
    floor = 1 - pause_rate
    if not interval["n"]:
        return Judgement("none", "No audits in the window.")
    if interval["high"] < floor:
        return Judgement("bad", "Under the band even at its best.")
    if interval["low"] < floor:
        return Judgement("watch", "May be under the band: audit more to know.")
    return Judgement("ok", "Inside the band.")


def judge_time_saved(minutes: float, volume: int) -> Judgement:
    if not volume:
        return Judgement("none", "No cases in the window.")
    if minutes < 0:
        return Judgement("bad", "People spend more time than the baseline: automation costs more than it saves.")
    return Judgement("ok", "Saves more than people spend.")


def judge_drift(psi: float | None) -> Judgement:
    if psi is None:
        return Judgement("none", "Nothing to compare: one of the two windows has no cases.")
    if psi >= DRIFT_PSI:
        return Judgement("bad", f"PSI {psi:.2f}: the confidences have drifted (0.2 or more).")
    return Judgement("ok", f"PSI {psi:.2f}: no drift against the previous window (under 0.2).")


NO_BAND = Judgement("none", "")  # DESIGN.md gives no band: the figure is read with its trend
