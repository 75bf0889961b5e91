"""Background jobs of the cases layer: thin functions over services, idempotent, returning a summary."""

from __future__ import annotations

import logging
from typing import Any

from cases.services.retention import purge_expired_inputs
from cases.services.sla import sweep

logger = logging.getLogger("hitl.jobs")


def sla_sweep() -> dict[str, Any]:
    """Every minute: warn at 80 % of the SLA, move overdue cases to their next queue, record breaches."""
    result = sweep().as_dict()
    if result["moved"] or result["breached"] or result["warned"]:
        logger.info("SLA sweep: %s", result)
    return result


def retention_purge() -> dict[str, Any]:
    """Nightly: purge the inputs that passed their category's retention; idempotent."""
    result = purge_expired_inputs()
    if result["purged"]:
        logger.info("Retention purge: %d input(s) redacted", result["purged"])
    return result
