"""Background jobs of the metrics layer: thin functions over its services, idempotent."""

from __future__ import annotations

import logging
from typing import Any

from governance.history import system_user
from governance.models import Category
from metrics.models import TrainingRun
from metrics.services import retraining, snapshots
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


def train_model(category_slug: str, run_id: int | None = None) -> dict[str, Any]:
    """On demand (admin, `runjob train_model --category SLUG`), on the cadence and on the override alert: train the
    built-in model on the category's gated labels, as the TrainingRun `run_id` (queued by `request_training`; by
    hand, without one, a run is recorded here). A refusal is an outcome, not a crash: `ok: false` and why."""
    if run_id is None:
        category = Category.objects.get(slug=category_slug)
        run_id = retraining.request_training(
            category=category, user=system_user(), trigger=TrainingRun.Trigger.COMMAND, enqueue=False
        ).pk
    run = retraining.run_training(run_id=run_id)
    if run.status == TrainingRun.Status.REFUSED:
        logger.warning("Training refused for %s: %s", category_slug, run.message)
        return {"ok": False, "category": category_slug, "run": run.pk, "refused": run.message}
    if run.model_version is None:
        # Not this delivery's to run (already running or finished elsewhere): say where it stands.
        return {
            "ok": run.status != TrainingRun.Status.FAILED,
            "category": category_slug,
            "run": run.pk,
            "status": run.status,
            "message": run.message,
        }
    version = run.model_version
    metrics = version.metrics
    logger.info("Trained %s for %s: accuracy %.3f", version.label, category_slug, metrics["accuracy"])
    return {
        "ok": True,
        "category": category_slug,
        "run": run.pk,
        "model_version": version.label,
        "status": version.status,
        "n_train": metrics["n_train"],
        "n": metrics["n"],
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "brier": metrics["brier"],
        "ece": metrics["ece"],
        "seconds": metrics["training_seconds"],
    }


def retrain_due() -> dict[str, Any]:
    """Daily: queue a retraining for each category whose built-in model is older than its cadence."""
    return retraining.retrain_due()
