"""Every periodic job of HITL Desk, registered in this one module (DESIGN.md, Time).

`manage.py rqcron hitl_project.cron` loads this module: RQ's cron scheduler collects what `rq.cron.register`
was called with at import time and enqueues each job on its schedule for an `rqworker` to run.
`manage.py runjob NAME` runs one of the same jobs once, by hand, from the same table, so a job that exists
on a schedule can always be run by hand and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import cron

from cases.jobs import retention_purge, sla_sweep
from governance.jobs import audit_anchor, deliver_webhooks, verify_audit_chain
from metrics.jobs import alert_check, pause_check, retrain_due, snapshot_metrics, train_model

QUEUE_NAME = "default"


@dataclass(frozen=True)
class PeriodicJob:
    """A job function and its schedule: `interval` (seconds; also runs when the scheduler starts) or `cron`."""

    func: Callable[[], Any]
    description: str
    interval: int | None = None
    cron: str | None = None
    timeout: int = 300

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ValueError(f"{self.func.__name__}: give exactly one of interval or cron")


# The name is what `runjob` takes and what RQ's cron dashboard shows. Jobs must be idempotent: a scheduler
# restart or a double delivery may run one twice.
JOBS: dict[str, PeriodicJob] = {
    "alert_check": PeriodicJob(
        func=alert_check,
        description="Evaluate the alert rules: override rate, escalation spike, resolution time, drift, rubber-stamps",
        cron="5 * * * *",
    ),
    "audit_anchor": PeriodicJob(
        func=audit_anchor,
        description="Copy each audit chain's head outside the database: anchor log, log, stewards, webhook",
        cron="0 * * * *",
    ),
    "deliver_webhooks": PeriodicJob(
        func=deliver_webhooks,
        description="Send the due webhook deliveries that missed their own job (Redis down, retries, dead workers)",
        interval=60,
    ),
    "pause_check": PeriodicJob(
        func=pause_check,
        description="Pause categories whose reviewed outputs are refused too often (also runs after each decision)",
        interval=10 * 60,
    ),
    "retrain_due": PeriodicJob(
        func=retrain_due,
        description="Queue a retraining of each built-in model older than its category's cadence (default 30 days)",
        cron="41 2 * * *",  # nightly, before the purge, off the hour
    ),
    "retention_purge": PeriodicJob(
        func=retention_purge,
        description="Replace the raw input of cases past their category's retention with its redacted form",
        cron="17 3 * * *",  # nightly, off the hour
        timeout=60 * 60,
    ),
    "snapshot_metrics": PeriodicJob(
        func=snapshot_metrics,
        description="Store each category's figures for the hour just ended, for the dashboard's trends",
        cron="2 * * * *",  # just after the hour it counts
        timeout=30 * 60,
    ),
    "sla_sweep": PeriodicJob(
        func=sla_sweep,
        description="Warn at 80 % of the SLA, move overdue cases to their next queue, record breaches",
        interval=60,
    ),
    "verify_audit": PeriodicJob(
        func=verify_audit_chain,
        description="Verify the audit log's hash chain and name the first broken row",
        # An interval rather than a cron line: the check also runs whenever the scheduler starts, so a deploy
        # learns at once whether the chain holds. It reads every row, hence the generous timeout.
        interval=60 * 60,
        timeout=30 * 60,
    ),
}


# Jobs that work on one category (`runjob NAME --category SLUG`), run on demand rather than on a schedule.
# Each takes the category's slug and returns a summary with `ok`; a refusal is `ok: false` with `refused`.
CATEGORY_JOBS: dict[str, Callable[[str], dict[str, Any]]] = {
    "train_model": train_model,
}


def register_all() -> None:
    """Hand every job of JOBS to RQ's cron registry (what `rqcron` reads after importing this module)."""
    for name, job in JOBS.items():
        cron.register(
            job.func,
            queue_name=QUEUE_NAME,
            interval=job.interval,
            cron=job.cron,
            job_timeout=job.timeout,
            name=name,
        )


# rqcron imports (or reloads) this module and reads the registrations made during the import. Importing it
# elsewhere (runjob) only fills RQ's in-memory list, which nothing else reads and rqcron clears before loading.
register_all()
