"""Adopting a row of the threshold advisor: the category's auto threshold becomes the row's, as a new policy
version with a reason, through the same service the policy form and the policy API use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance.history import require_reason
from governance.models import Category, Policy
from governance.permissions import can_change_category
from governance.services import update_policy
from metrics import kpis

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def adopt_threshold(*, category: Category, user: User, threshold: float, window: kpis.Window, reason: str) -> Policy:
    """Make `threshold` the category's auto threshold, as the advisor over `window` proposes it.

    Needs `governance.change_category` on the category. Refuses a threshold that is not one of the advisor's
    candidates, and one whose row has too few known outcomes to advise (the advisor says so instead of guessing;
    a person who wants it anyway changes the policy by hand, with a reason)."""
    reason = require_reason(reason)
    if not can_change_category(user, category):
        raise PermissionDenied(f"Changing the policy of {category.slug!r} needs governance.change_category.")
    candidate = next((c for c in kpis.ADVISOR_THRESHOLDS if abs(c - float(threshold)) < 1e-9), None)
    if candidate is None:
        raise ValidationError({"threshold": "Choose one of the advisor's thresholds, 0.50 to 0.99 in steps of 0.01."})
    threshold = candidate
    per_case = kpis.decision_counts(category, window)["seconds_per_decision"]
    row = next(
        r
        for r in kpis.threshold_advisor(category, window, review_seconds_per_case=per_case)
        if r["threshold"] == threshold
    )
    if not row["enough_data"]:
        raise ValidationError(
            {
                "threshold": f"Too little data to advise {threshold:.2f}: {row['known']} known outcomes above it, "
                f"{kpis.ADVISOR_MIN_KNOWN} needed. Widen the window, or change the policy by hand."
            }
        )
    evidence = (
        f"advisor over {window.name or 'a custom window'}: acts on {row['would_act_share']:.0%}, "
        f"error {row['error_rate']:.1%} (at most {row['error_rate_upper']:.1%})"
    )
    return update_policy(
        category=category, user=user, changes={"auto_threshold": threshold}, reason=f"{reason} [{evidence}]"
    )
