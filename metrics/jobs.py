"""Background jobs of the metrics layer: thin functions over its services, idempotent."""

from __future__ import annotations

import logging
from typing import Any

from governance.history import system_user
from governance.models import Category
from metrics.services import snapshots
from metrics.services.alerts import check_all as check_alert_rules
from metrics.services.pause import check_all, check_category

logger = logging.getLogger("hitl.jobs")


def pause_check(category_id: int | None = None) -> list[dict[str, Any]]:
    """After a human decision (for its category) and every 10 minutes (for all): apply the pause rule."""
    results = [check_category(category_id)] if category_id is not None else check_all()
    for result in results:
        if result.get("paused"):
            logger.warning("Paused %s: %s", result["category"], result)
    return results


def alert_check() -> list[dict[str, Any]]:
    """Hourly: evaluate every active alert rule; notify or pause as each rule says."""
    fired = check_alert_rules()
    for line in fired:
        logger.warning("Alert: %s", line)
    return fired


def snapshot_metrics() -> dict[str, Any]:
    """Hourly: store each category's figures for the hours just completed (and any the worker missed)."""
    result = snapshots.snapshot_metrics()
    if result["written"]:
        logger.info("Metric snapshots: %s", result)
    return result


def train_model(category_slug: str) -> dict[str, Any]:
    """On demand (admin, `runjob train_model --category SLUG`): train the built-in model on the category's gated
    labels. A refusal is an outcome, not a crash: the summary says `ok: false` and why."""
    # Imported here, not at the top: scikit-learn takes seconds to import, and RQ's work horse imports this module
    # for every job it runs; the frequent jobs above must not pay for the one that trains.
    from metrics.services import training

    category = Category.objects.select_related("policy").get(slug=category_slug)
    try:
        result = training.train_model(category=category, user=system_user())
    except training.TrainingRefused as refusal:
        logger.warning("Training refused for %s: %s", category_slug, refusal)
        return {"ok": False, "category": category_slug, "refused": str(refusal)}
    metrics = result.metrics
    logger.info("Trained %s for %s: accuracy %.3f", result.model_version.label, category_slug, metrics["accuracy"])
    return {
        "ok": True,
        "category": category_slug,
        "model_version": result.model_version.label,
        "status": result.model_version.status,
        "n_train": metrics["n_train"],
        "n": metrics["n"],
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "brier": metrics["brier"],
        "ece": metrics["ece"],
        "seconds": result.seconds,
    }
