"""The demo's past: days of traffic per demo category, written through the real services at the times it happened.

`seed_demo` plays a month of work back as a small discrete-event simulation (`hitl_project.demo.simulation`). The
clock is moved with time-machine (`travel(..., tick=False)`), so every row gets its timestamp the honest way: from
the service that writes it (`timezone.now()` in intake, claims, decisions, the audit trail and the history
records), never by editing a timestamp afterwards. Every three hours the integration posts what came in as one bulk
request (`submit_cases`); the reviewers claim and decide the cases (`reviews.services.claim` / `decide`) within
their queue's SLA; a rubber-stamper batch-approves (`batch_approve`); audits of auto-approved cases are confirmed
or flagged; a few cases are forgotten until the SLA sweep (`cases.services.sla.sweep`) moves them on and records
the breach; the escalation manager decides what reaches the escalation and expert queues. The pause rule runs every
hour for the categories decided on in it (its check after each decision cannot be enqueued while seeding: there is
no Redis yet) and the alert rules once a day, so the alerts have a past too.

The traffic, how the demo's people work, and the stories the dashboard should show are set out in
`hitl_project.demo.stories`.

Everything random is drawn from generators seeded by the category, the day (counted back from today) and the
case's external id, never by the clock: a second run finds every external id already there and adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.test.utils import override_settings

from cases.models import Case
from governance.models import Category
from hitl_project.demo.simulation import HistoryResult, Simulation

DEFAULT_DAYS = 30
MAX_DAYS = 90  # the longest KPI window; more history than that nobody reads on the dashboard


@contextmanager
def _the_past() -> Iterator[None]:
    """What must not reach the present while the past is written, for the duration and only for it.

    - E-mail: the history's notices are in-admin rows dated when they happened; their e-mails would have gone out
      then, and must not land in anyone's inbox (or the terminal) now.
    - Enqueue warnings: there is no Redis while seeding, so every decision's after-commit pause check fails to
      enqueue and says so; the history runs the pause check itself every simulated hour, so the thousands of
      warnings would be noise.
    """
    queueing = logging.getLogger("hitl.queueing")
    level = queueing.level
    queueing.setLevel(logging.ERROR)
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            yield
    finally:
        queueing.setLevel(level)


def write_history(
    *,
    users: dict[str, User],
    integration: User,
    categories: dict[str, Category],
    end: datetime,
    days: int,
    progress: Callable[[str], None],
) -> HistoryResult:
    """Play `days` days of traffic up to `end` (the start of the current hour) into the database.

    One transaction: a seed interrupted halfway leaves no half-told past behind, and the next run tells it whole.
    Events due after `end` (a decision the reviewers would get to later) do not happen: those cases wait in the
    queues for the demo's own reviewers and its own SLA sweep.
    """
    if not days:
        return HistoryResult()
    start = end - timedelta(days=days)
    existing = set(
        Case.objects.filter(category__in=categories.values(), external_id__contains="-H").values_list(
            "external_id", flat=True
        )
    )
    with _the_past(), transaction.atomic(), time_machine.travel(start, tick=False) as clock:
        sim = Simulation(clock=clock, users=users, integration=integration, categories=categories)
        for day_back in range(days, 0, -1):
            day_start = end - timedelta(days=day_back)
            if sim.schedule_day(day_back, day_start, existing):
                for hour in range(24):
                    sim.at(day_start + timedelta(hours=hour, minutes=10), sim.hourly_jobs)
                sim.at(day_start + timedelta(hours=23, minutes=5), sim.daily_jobs)
            sim.run_until(day_start + timedelta(days=1))
            sim.read_notices(day_start)
            if day_back % 5 == 0 or day_back == 1:
                progress(
                    f"seeding history: {days + 1 - day_back}/{days} days "
                    f"({sim.result.cases} new cases, {sim.result.decisions} decisions)"
                )
    return sim.result
