"""Background jobs of the metrics layer: thin functions over its services, idempotent."""

from __future__ import annotations

import logging
from typing import Any

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
