"""Webhooks: the audit events a category's endpoints subscribe to, POSTed to them signed, retried and logged.

One module per subject: `endpoints` (registering and changing endpoints: the writes), `delivery` (fan-out from
the audit events, leases, retries and the periodic catch-up), `client` (signing and the HTTP call). The names
callers use are importable from here.

Receivers verify `X-HITL-Signature: sha256=<hex HMAC-SHA256 of the raw body with the endpoint secret>` and may
deduplicate on `X-HITL-Delivery`: a worker that dies after the receiver answered but before the success was
recorded is the one way a receiver can see a delivery twice.
"""

from governance.webhooks.client import AttemptResult, sign
from governance.webhooks.delivery import (
    DELIVER_JOB,
    WEBHOOK_EVENTS,
    backoff_seconds,
    build_body,
    deliver,
    deliver_due,
    enqueue_deliveries,
    queue_deliveries,
    retry_now,
)
from governance.webhooks.endpoints import ENDPOINT_FIELDS, create_endpoint, rotate_secret, update_endpoint

__all__ = [
    "DELIVER_JOB",
    "ENDPOINT_FIELDS",
    "WEBHOOK_EVENTS",
    "AttemptResult",
    "backoff_seconds",
    "build_body",
    "create_endpoint",
    "deliver",
    "deliver_due",
    "enqueue_deliveries",
    "queue_deliveries",
    "retry_now",
    "rotate_secret",
    "sign",
    "update_endpoint",
]
