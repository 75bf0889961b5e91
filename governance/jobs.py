"""Background jobs of the governance layer: thin functions a worker (or `manage.py runjob`) runs.

Each job is idempotent and returns a small JSON-able summary, which RQ keeps as the job's result.
"""

from __future__ import annotations

import logging
from typing import Any

from governance import webhooks
from governance.events import verify_chain

logger = logging.getLogger("hitl.jobs")


def verify_audit_chain() -> dict[str, Any]:
    """Walk the whole audit chain and report the first row that breaks it (hourly; read-only, so always safe).

    A broken chain is logged as an error naming the row, so it reaches whatever watches the worker's log; the
    job itself succeeds either way, because the check ran: its result says whether the chain holds.
    """
    checked, problem = verify_chain()
    if problem is None:
        logger.info("Audit chain OK: %d events", checked)
        return {"ok": True, "checked": checked, "first_bad": None}
    logger.error(
        "Audit chain BROKEN at seq %s (id %s): %s; %d events before it are intact",
        problem.seq,
        problem.event_id,
        problem.message,
        checked,
    )
    return {
        "ok": False,
        "checked": checked,
        "first_bad": {"seq": problem.seq, "id": problem.event_id, "message": problem.message},
    }


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
