"""The demo's past: days of traffic per demo category, written through the real services at the times it happened.

`seed_demo` plays a month of work back as a small discrete-event simulation. The clock is moved with
time-machine (`travel(..., tick=False)`), so every row gets its timestamp the honest way: from the service that
writes it (`timezone.now()` in intake, claims, decisions, the audit trail and the history records), never by
editing a timestamp afterwards. Every three hours the integration posts what came in as one bulk request
(`submit_cases`); the reviewers claim and decide the cases (`reviews.services.claim` / `decide`) within their
queue's SLA; a rubber-stamper batch-approves (`batch_approve`); audits of auto-approved cases are confirmed or
flagged; a few cases are forgotten until the SLA sweep (`cases.services.sla.sweep`) moves them on and records
the breach; the escalation manager decides what reaches the escalation and expert queues. The pause rule runs
every hour for the categories decided on in it (its check after each decision cannot be enqueued while seeding:
there is no Redis yet) and the alert rules once a day, so the alerts have a past too.

The stories the dashboard should show (DESIGN.md, KPIs) are built into the traffic, each with a cause a product
owner would recognise:

- lead-qualification drifts: over the last week new kinds of leads arrive and the lead scorer grows less sure
  of them (confidence slides down; being calibrated, it is also wrong more often, and it rarely acts on its own
  any more), so its PSI against the week before is well above 0.2;
- support-triage serves one region badly: its tickets from LATAM are wrong far more often (Spanish and
  Portuguese mail the model barely saw), so the four-fifths rule flags the segment key `region`;
- refund-requests has a rubber-stamper: one reviewer batch-approves whatever reaches the quick queue, a second
  or two a case, and the rubber-stamping alert fires about him every week.

Everything random is drawn from generators seeded by the category, the day (counted back from today) and the
case's external id, never by the clock: a second run finds every external id already there and adds nothing.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.contrib.auth.models import User
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from cases.choices import AuditStatus, CaseStatus, QueueKind
from cases.models import Case, Queue
from cases.services.intake import IntakeItem, submit_cases
from cases.services.sla import sweep
from governance.models import Category, Notification
from hitl_project.demo.cases import (
    ID_PREFIXES,
    LEADS,
    REFUNDS,
    SEED,
    SUPPORT,
    DemoCase,
    Skew,
    make_case,
)
from hitl_project.demo.texts import REGIONS
from metrics.services import alerts, pause
from reviews import services as reviews
from reviews.choices import Action, ReasonCode

DEFAULT_DAYS = 30
MAX_DAYS = 90  # the longest KPI window; more history than that nobody reads on the dashboard

# When cases arrive, by hour of the day (UTC): a working day with a quiet night. The integration posts what came
# in every three hours as one bulk request (a seed that posted each case alone would take minutes).
HOURLY_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 8, 7, 8, 8, 7, 6, 5, 4, 3, 3, 2, 2, 1)
POSTING_HOURS = 3
# The rubber-stamper's sessions: twice-hourly batches through the working day (hour, minute).
STAMPING_SESSIONS = tuple((hour, minute) for hour in range(8, 20) for minute in (15, 45))

ESCALATION_MANAGER = "escalation"
# A reviewer sometimes overrules an output that was right: people disagree, and the advisor should see it.
REVIEWER_SLIP = 0.01
# Forgotten cases: left until the SLA sweep moves them on (quick and full) or records the breach (the others).
FORGOTTEN: dict[str, float] = {
    QueueKind.QUICK: 0.04,
    QueueKind.FULL: 0.05,
    QueueKind.ESCALATION: 0.06,
    QueueKind.EXPERT: 0.04,
}
# What a careful reviewer does with an output that is wrong: correct it, reject it, or send it to an expert.
WRONG_OUTPUT_ACTIONS: dict[str, float] = {Action.CORRECT: 0.75, Action.REJECT: 0.12, Action.ESCALATE: 0.13}
# Median seconds a careful person spends on a case, by category and queue kind (log-normal around it).
MEDIAN_SECONDS = {SUPPORT: 45.0, REFUNDS: 75.0, LEADS: 60.0}
QUEUE_EFFORT: dict[str, float] = {QueueKind.QUICK: 1.0, QueueKind.FULL: 2.5, QueueKind.AUDIT: 1.5}
ESCALATION_MEDIAN_SECONDS = 360.0
# Median minutes a case waits before someone opens it: full review is prioritised, audits are done in spare time.
MEDIAN_WAIT_MINUTES: dict[str, float] = {QueueKind.QUICK: 90.0, QueueKind.FULL: 35.0, QueueKind.AUDIT: 8 * 60.0}
LONGEST_SITTING_SECONDS = 840  # under the 15-minute claim: a claim never lapses mid-decision


@dataclass(frozen=True)
class Story:
    """What a category's past looks like: how much traffic, who works it, and what went wrong in it."""

    per_day: int
    reviewers: dict[str, float]  # careful reviewers by share of the cases they take
    drift_days: int = 0  # over the last `drift_days` days the model's confidence slides down ...
    drift_drop: float = 0.0  # ... by this much, reached after `drift_ramp_days` and held since
    drift_ramp_days: int = 4
    uneven_region: str = ""  # the model is wrong far more often on this region ...
    uneven_boost: float = 0.0  # ... by this much more
    uneven_drop: float = 0.0  # ... and a little less sure of it
    rubber_stamper: str = ""  # a reviewer who batch-approves whatever reaches the quick queue ...
    stamper_share: float = 0.0  # ... taking this share of its cases

    def skew(self, day_back: int, region: str) -> Skew:
        """The model's skew on a case of the day `day_back` days ago from this region."""
        drop = 0.0
        if self.drift_days and day_back <= self.drift_days:
            days_in = self.drift_days + 1 - day_back
            drop = self.drift_drop * min(1.0, days_in / self.drift_ramp_days)
        if region == self.uneven_region:
            return Skew(confidence_drop=drop + self.uneven_drop, error_boost=self.uneven_boost, region=region)
        return Skew(confidence_drop=drop, region=region)

    def live_skew(self) -> Skew:
        """Where the drift has got to today: the live stream carries on from the history."""
        return Skew(confidence_drop=self.drift_drop)


CAREFUL = {"reviewer": 0.6, "reviewer-lea": 0.4}
STORIES: dict[str, Story] = {
    SUPPORT: Story(per_day=28, reviewers=CAREFUL, uneven_region="LATAM", uneven_boost=0.30, uneven_drop=0.08),
    REFUNDS: Story(per_day=24, reviewers=CAREFUL, rubber_stamper="reviewer-sam", stamper_share=0.7),
    LEADS: Story(per_day=32, reviewers=CAREFUL, drift_days=7, drift_drop=0.12),
}


@dataclass
class HistoryResult:
    """What the history added (all zero on a second run)."""

    cases: int = 0
    decisions: int = 0
    breaches: int = 0


def history_id(slug: str, day_back: int, number: int) -> str:
    """A history case's external id, e.g. TCK-H07-031: the 31st ticket of the day a week ago. Keyed by the day
    counted back from today, not by its date, so re-seeding on a later day finds the same ids."""
    return f"{ID_PREFIXES[slug]}-H{day_back:02d}-{number:03d}"


def day_cases(slug: str, day_back: int) -> list[tuple[int, DemoCase]]:
    """The cases of one category's day `day_back` days ago: (hour of the day it came in, case), in arrival order."""
    story = STORIES[slug]
    rng = random.Random(f"{SEED}/history/{slug}/{day_back}")
    count = round(story.per_day * rng.uniform(0.8, 1.2))
    hours = sorted(rng.choices(range(24), weights=HOURLY_WEIGHTS, k=count))
    result = []
    for number, hour in enumerate(hours, start=1):
        region = rng.choice(REGIONS)
        result.append((hour, make_case(slug, rng, history_id(slug, day_back, number), story.skew(day_back, region))))
    return result


def _lognormal_seconds(rng: random.Random, median: float) -> int:
    return max(3, min(LONGEST_SITTING_SECONDS, round(rng.lognormvariate(math.log(median), 0.5))))


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


class _Simulation:
    """A clock, a heap of things due to happen, and the people who make them happen."""

    def __init__(
        self,
        *,
        clock: time_machine.Traveller,
        users: dict[str, User],
        integration: User,
        categories: dict[str, Category],
    ) -> None:
        self.clock = clock
        self.users = users
        self.integration = integration
        self.categories = categories
        self.queues = {queue.pk: queue for queue in Queue.objects.filter(category__in=categories.values())}
        self.demo: dict[int, DemoCase] = {}  # case id -> what it should have said
        self.demo_category: dict[int, int] = {}  # case id -> its category's id
        self.events: list[tuple[datetime, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.stamping: dict[tuple[datetime, int], list[int]] = {}
        self.decided_categories: set[int] = set()
        self.result = HistoryResult()

    # --- the clock ---

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (when, next(self.order), action))

    def run_until(self, end: datetime) -> None:
        """Play every event due before `end`, in time order (events may schedule more)."""
        while self.events and self.events[0][0] < end:
            when, _, action = heapq.heappop(self.events)
            self.clock.move_to(when)
            action()

    # --- arrivals ---

    def schedule_day(self, day_back: int, day_start: datetime, existing: set[str]) -> bool:
        """Schedule the day's bulk submissions (one per category every `POSTING_HOURS`, posted as they end), leaving
        out what was seeded before; whether anything is new."""
        added = False
        for slug in STORIES:
            posts: dict[int, list[DemoCase]] = {}
            for hour, demo in day_cases(slug, day_back):
                if demo.fields["external_id"] not in existing:
                    offset = (hour - day_start.hour) % 24  # hours since the day (which starts at `end`'s hour) began
                    posts.setdefault(offset // POSTING_HOURS, []).append(demo)
            for slot, items in posts.items():
                posted = day_start + timedelta(hours=(slot + 1) * POSTING_HOURS, minutes=-5)
                self.at(posted, functools.partial(self.submit, slug, items))
                added = True
        return added

    def submit(self, slug: str, items: list[DemoCase]) -> None:
        category = self.categories[slug]
        batch = [IntakeItem(category=category, **demo.fields) for demo in items]
        by_id = {demo.fields["external_id"]: demo for demo in items}
        for case, created in submit_cases(user=self.integration, items=batch):
            if not created:
                continue  # seeded before: its past happened already
            self.result.cases += 1
            self.demo[case.pk] = by_id[case.external_id]
            self.demo_category[case.pk] = category.pk
            self.plan(case)

    # --- what happens to a case next ---

    def plan(self, case: Case) -> None:
        """Schedule the next step for a case waiting in a queue (nothing for an auto case without audit)."""
        if case.queue is None or not (case.status in (CaseStatus.QUEUED, CaseStatus.ESCALATED) or self._audited(case)):
            return
        rng = random.Random(f"{SEED}/{case.external_id}/{case.queue.kind}")
        kind = case.queue.kind
        now = timezone.now()
        assert case.due_at is not None
        if kind in FORGOTTEN and rng.random() < FORGOTTEN[kind]:
            # Nobody gets to it in time: the sweep a few minutes after its due time finds it.
            self.at(case.due_at + timedelta(minutes=rng.randint(1, 9)), lambda: self.sweep_for(case.pk))
            return
        if kind in (QueueKind.ESCALATION, QueueKind.EXPERT):
            self.plan_escalation(case, rng, now)
            return
        story = STORIES[case.category.slug]
        if kind == QueueKind.QUICK and story.rubber_stamper and rng.random() < story.stamper_share:
            self.plan_stamp(case, story.rubber_stamper, now)
            return
        reviewer = rng.choices(list(story.reviewers), weights=list(story.reviewers.values()))[0]
        seconds = _lognormal_seconds(rng, MEDIAN_SECONDS[case.category.slug] * QUEUE_EFFORT.get(kind, 1.0))
        # Within the SLA: the team works the queue oldest-due first, long before the sweep would.
        typical = timedelta(minutes=rng.lognormvariate(math.log(MEDIAN_WAIT_MINUTES[kind]), 0.9))
        when = now + min((case.due_at - now) * 0.85, typical)
        when = max(when, now + timedelta(seconds=seconds + 60))
        audit = self._audited(case)
        self.at(when - timedelta(seconds=seconds), lambda: self.claim(case.pk, reviewer))
        self.at(when, lambda: self.review(case.pk, reviewer, seconds, rng, audit=audit))

    def _audited(self, case: Case) -> bool:
        return case.status == CaseStatus.AUTO_APPROVED and case.audit_status == AuditStatus.PENDING

    def plan_escalation(self, case: Case, rng: random.Random, now: datetime) -> None:
        """The escalation manager takes an escalated case within its queue's SLA (or at once if it is late)."""
        assert case.due_at is not None
        seconds = _lognormal_seconds(rng, ESCALATION_MEDIAN_SECONDS)
        wait = case.due_at - now
        when = now + timedelta(seconds=seconds + 60) + (wait - timedelta(seconds=seconds + 60)) * rng.uniform(0.1, 0.8)
        if when >= case.due_at:  # already late (a breach recorded): the manager takes it next
            when = now + timedelta(seconds=seconds + rng.randint(300, 1800))
        self.at(when - timedelta(seconds=seconds), lambda: self.claim(case.pk, ESCALATION_MANAGER))
        self.at(when, lambda: self.settle(case.pk, seconds, rng))

    def plan_stamp(self, case: Case, stamper: str, now: datetime) -> None:
        """Put the case in the rubber-stamper's next batch session (the same day or the next morning)."""
        session = self._next_session(now + timedelta(minutes=5))
        assert case.queue is not None
        key = (session, case.queue.pk)
        if key not in self.stamping:
            self.stamping[key] = []
            self.at(session, lambda: self.stamp(key, stamper))
        self.stamping[key].append(case.pk)

    @staticmethod
    def _next_session(after: datetime) -> datetime:
        """The first of the rubber-stamper's sessions at or after `after`."""
        for day in range(2):
            start = (after + timedelta(days=day)).replace(minute=0, second=0, microsecond=0)
            for hour, minute in STAMPING_SESSIONS:
                candidate = start.replace(hour=hour, minute=minute)
                if candidate >= after:
                    return candidate
        raise AssertionError("a session is always found within two days")

    # --- people at work ---

    def claim(self, case_id: int, username: str) -> None:
        reviews.claim(case=case_id, user=self.users[username])

    def review(self, case_id: int, username: str, seconds: int, rng: random.Random, *, audit: bool) -> None:
        """A careful reviewer's verdict: approve a right output, correct, reject or escalate a wrong one; an audit
        is confirmed or flagged the same way."""
        demo = self.demo[case_id]
        user = self.users[username]
        right = demo.model_is_right != (rng.random() < REVIEWER_SLIP)
        if audit:
            if right:
                self.decide(case_id, user, Action.CONFIRM, seconds)
            else:
                self.decide(case_id, user, Action.FLAG, seconds, demo.truth_output, ReasonCode.WRONG_LABEL)
            return
        if right:
            self.decide(case_id, user, Action.APPROVE, seconds)
            return
        if demo.truth == "legal":
            # A refund that belongs with the legal team goes to the escalation queue whatever the model said.
            self.escalate(case_id, user, seconds, ReasonCode.POLICY_LEGAL)
            return
        action = rng.choices(list(WRONG_OUTPUT_ACTIONS), weights=list(WRONG_OUTPUT_ACTIONS.values()))[0]
        if action == Action.CORRECT:
            self.decide(case_id, user, Action.CORRECT, seconds, demo.truth_output)
        elif action == Action.REJECT:
            reason = rng.choice([ReasonCode.WRONG_LABEL, ReasonCode.BAD_DRAFT])
            self.decide(case_id, user, Action.REJECT, seconds, reason_code=reason)
        else:
            self.escalate(case_id, user, seconds, ReasonCode.NEEDS_EXPERT)

    def escalate(self, case_id: int, user: User, seconds: int, reason: str) -> None:
        decision = self.decide(case_id, user, Action.ESCALATE, seconds, reason_code=reason)
        self.plan(decision.case)

    def settle(self, case_id: int, seconds: int, rng: random.Random) -> None:
        """The escalation manager's final word: approve a right output, otherwise correct it (or, now and then,
        reject it outright)."""
        demo = self.demo[case_id]
        user = self.users[ESCALATION_MANAGER]
        if demo.model_is_right:
            self.decide(case_id, user, Action.APPROVE, seconds)
        elif rng.random() < 0.9:
            self.decide(case_id, user, Action.CORRECT, seconds, demo.truth_output)
        else:
            self.decide(case_id, user, Action.REJECT, seconds, reason_code=ReasonCode.OTHER)

    def stamp(self, key: tuple[datetime, int], stamper: str) -> None:
        """The rubber-stamper's session: batch approvals of everything collected, as many as the policy's cap
        (`batch_max`) allows at a time, a second or two a case."""
        case_ids = self.stamping.pop(key)
        queue = self.queues[key[1]]
        pace = random.Random(f"{SEED}/stamp/{key[0].isoformat()}").uniform(1.0, 2.4)
        cap = reviews.batch_cap(queue)
        for start in range(0, len(case_ids), cap):
            batch = case_ids[start : start + cap]
            result = reviews.batch_approve(
                user=self.users[stamper], queue=queue, case_ids=batch, seconds_spent=round(len(batch) * pace)
            )
            self.result.decisions += len(result.approved)
        self.decided_categories.add(queue.category_id)

    def decide(
        self,
        case_id: int,
        user: User,
        action: str,
        seconds: int,
        output: dict[str, Any] | None = None,
        reason_code: str = "",
    ) -> Any:
        self.result.decisions += 1
        self.decided_categories.add(self.demo_category[case_id])
        return reviews.decide(
            case=case_id, user=user, action=action, output=output, reason_code=reason_code, seconds_spent=seconds
        )

    # --- the jobs ---

    def sweep_for(self, case_id: int) -> None:
        """The SLA sweep, run when a forgotten case is overdue (on the real system it runs every minute; between
        these runs it would find nothing to move). What it moved waits for the escalation manager."""
        self.result.breaches += sweep(now=timezone.now()).breached
        case = Case.objects.select_related("queue", "category").get(pk=case_id)
        if case.status == CaseStatus.ESCALATED:
            self.plan_escalation(case, random.Random(f"{SEED}/{case.external_id}/late"), timezone.now())

    def daily_jobs(self) -> None:
        """The alert rules, once a simulated day (the real cron runs them hourly; at the demo's volumes the rules'
        24-hour windows hardly differ from one hour to the next, and each fires at most once per window)."""
        alerts.check_all(now=timezone.now())

    def hourly_jobs(self) -> None:
        """The pause rule for each category decided on in the last hour (on the real system it runs after every
        decision and every ten minutes; in between, nothing it reads has changed)."""
        for category_id in sorted(self.decided_categories):
            pause.check_category(category_id, now=timezone.now())
        self.decided_categories.clear()

    def read_notices(self, day_start: datetime) -> None:
        """The day's notices were read by the evening (as the admin's "mark as read" does): a reviewer logging in to
        the demo meets today's news, not a month of unread SLA warnings."""
        day = Notification.objects.filter(
            created_at__gte=day_start, created_at__lt=day_start + timedelta(days=1), read_at__isnull=True
        )
        day.update(read_at=timezone.now())


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
        sim = _Simulation(clock=clock, users=users, integration=integration, categories=categories)
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
