"""Background jobs of the governance layer: thin functions a worker (or `manage.py runjob`) runs.

Each job is idempotent and returns a small JSON-able summary, which RQ keeps as the job's result.
"""

from __future__ import annotations

import logging
from typing import Any

from governance import services, webhooks
from governance.events import verify_chain
from governance.history import system_user

logger = logging.getLogger("hitl.jobs")


def verify_audit_chain() -> dict[str, Any]:
    """Walk every audit chain, the anchors and the bound rows, and report the first row that breaks them (hourly;
    read-only, so always safe).

    A broken trail is logged as an error naming the row, so it reaches whatever watches the worker's log; the
    job itself succeeds either way, because the check ran: its result says whether the trail holds.
    """
    result = verify_chain()
    if result.problem is None:
        logger.info("Audit trail OK: %d events in %d chains", result.checked, result.chains)
        return {"ok": True, "checked": result.checked, "first_bad": None}
    logger.error("Audit trail BROKEN in %s", result.problem.describe())
    problem = result.problem
    return {
        "ok": False,
        "checked": result.checked,
        "first_bad": {"chain": problem.chain, "seq": problem.seq, "id": problem.event_id, "message": problem.message},
    }


def audit_anchor() -> dict[str, Any]:
    """Hourly: copy each audit chain's head outside the database (log, anchor file, stewards, webhooks)."""
    return services.anchor_audit_chains(user=system_user())


def deliver_webhook(delivery_id: int) -> dict[str, Any]:
    """Send one webhook delivery (enqueued after its event commits, and again for each retry).

    Claims the delivery first, so a duplicate job, or the periodic catch-up running beside it, does nothing.
    """
    return {"delivery": delivery_id, "outcome": webhooks.deliver(delivery_id)}


def deliver_webhooks() -> dict[str, Any]:
    """Every minute: send the pending webhook deliveries that are due and were not sent by their own job.

    That is how missed work catches up: jobs lost while Redis was down, retries whose scheduled job never ran,
    a worker that died mid-send (once its lease runs out).
    """
    result = webhooks.deliver_due()
    if result["due"]:
        logger.info("Webhook catch-up: %s", result)
    return result
