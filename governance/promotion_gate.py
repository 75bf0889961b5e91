"""The promotion gate of the built-in model (DESIGN.md, Feedback loop): a `builtin@*` version goes past `shadow`
only if it beats the version now active on the same held-out cases.

"Beats" means: accuracy no lower and error rate at the policy's auto threshold no higher, and strictly better on
at least one of them (a tie changes nothing worth a rollout). An error rate where nothing would act counts as 0.

Governance may not read labels (it sits below reviews and metrics), so this is a pure function over the figures
training stored in the version's `metrics` (`versus_active`: both models on the same held-out cases, measured by
metrics.evaluation). It says in words what falls short and by how much; an empty answer lets the promotion pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUILTIN_MODEL_NAME = "builtin"


def promotion_shortfalls(*, metrics: Mapping[str, Any], active: str | None, auto_threshold: float) -> list[str]:
    """Why a built-in version with these `metrics` may not replace `active` (name@version, None when no version is
    active: nothing to beat) at the policy's `auto_threshold`; [] when it may."""
    if active is None:
        return []
    versus = metrics.get("versus_active")
    if not isinstance(versus, Mapping):
        return [f"it has no held-out comparison with {active}; retrain it"]
    if versus.get("active") != active:
        return [
            f"it was measured against {versus.get('active') or 'no active version'}, but {active} is active now; "
            "retrain it so both are measured on the same held-out cases"
        ]
    errors = _error_rates(metrics, versus, auto_threshold)
    if errors is None:
        return [f"it was not measured at the auto threshold {auto_threshold:.3f}; retrain it"]
    n = versus.get("n", 0)
    builtin_accuracy = float(versus["builtin"]["accuracy"])
    active_accuracy = float(versus["active_figures"]["accuracy"])
    builtin_error, active_error = errors
    shortfalls = []
    if builtin_accuracy < active_accuracy:
        shortfalls.append(
            f"accuracy {builtin_accuracy:.3f} against {active_accuracy:.3f} for {active} on the same {n} held-out "
            f"cases, short by {active_accuracy - builtin_accuracy:.3f}"
        )
    if builtin_error > active_error:
        shortfalls.append(
            f"error rate at the auto threshold {auto_threshold:.2f} {builtin_error:.3f} against {active_error:.3f} "
            f"for {active}, {builtin_error - active_error:.3f} too high"
        )
    if not shortfalls and builtin_accuracy == active_accuracy and builtin_error == active_error:
        shortfalls.append(
            f"it only ties with {active} (accuracy {builtin_accuracy:.3f}, error rate at the auto threshold "
            f"{builtin_error:.3f} on {n} held-out cases); it must beat it on one of them"
        )
    return shortfalls


def _error_rates(metrics: Mapping[str, Any], versus: Mapping[str, Any], threshold: float) -> tuple[float, float] | None:
    """(built-in, active) error rates at `threshold`: the figures taken at training time when the policy still has
    that threshold, else the candidate-threshold tables when it is one of their two-decimal steps."""
    if abs(float(versus.get("auto_threshold", -1.0)) - threshold) < 1e-9:
        builtin, active = versus["builtin"], versus["active_figures"]
    else:
        key = f"{threshold:.2f}"
        tables = (metrics.get("thresholds") or {}, versus.get("active_thresholds") or {})
        if abs(float(key) - threshold) >= 1e-9 or any(key not in table for table in tables):
            return None
        builtin, active = tables[0][key], tables[1][key]
    return float(builtin.get("error_rate") or 0.0), float(active.get("error_rate") or 0.0)
