"""The discrete-event simulation that plays the demo's past (`hitl_project.demo.history`): a clock, a heap of
things due to happen, and the demo's people making them happen through the real services: bulk intake, claims and
decisions, batch approvals, audits, the SLA sweep, and the pause and alert jobs.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from cases.choices import AuditStatus, CaseStatus, QueueKind
from cases.models import Case, Queue
from cases.services.intake import IntakeItem, submit_cases
from cases.services.sla import sweep
from governance.models import Category, Notification
from hitl_project.demo.cases import SEED, DemoCase
from hitl_project.demo.stories import (
    ESCALATION_MANAGER,
    ESCALATION_MEDIAN_SECONDS,
    FORGOTTEN,
    LONGEST_SITTING_SECONDS,
    MEDIAN_SECONDS,
    MEDIAN_WAIT_MINUTES,
    POSTING_HOURS,
    QUEUE_EFFORT,
    REVIEWER_SLIP,
    STAMPING_SESSIONS,
    STORIES,
    WRONG_OUTPUT_ACTIONS,
    day_cases,
)
from metrics.services import alerts, pause
from reviews import services as reviews
from reviews.choices import Action, ReasonCode


@dataclass
class HistoryResult:
    """What the history added (all zero on a second run)."""

    cases: int = 0
    decisions: int = 0
    breaches: int = 0


def _lognormal_seconds(rng: random.Random, median: float) -> int:
    return max(3, min(LONGEST_SITTING_SECONDS, round(rng.lognormvariate(math.log(median), 0.5))))


class Simulation:
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
