"""What the demo's past looks like: when cases arrive, how the demo's people work them, and each category's story
(used by `hitl_project.demo.history`, which plays it through the real services).

The stories the dashboard should show (DESIGN.md, KPIs) are built into the traffic, each with a cause a product
owner would recognise:

- lead-qualification drifts: over the last week new kinds of leads arrive and the lead scorer grows less sure
  of them (confidence slides down; being calibrated, it is also wrong more often, and it rarely acts on its own
  any more), so its PSI against the week before is well above 0.2;
- support-triage serves one region badly: its tickets from LATAM are wrong far more often (Spanish and
  Portuguese mail the model barely saw), so the four-fifths rule flags the segment key `region`;
- refund-requests has a rubber-stamper: one reviewer batch-approves whatever reaches the quick queue, a second
  or two a case, and the rubber-stamping alert fires about him every week.

A day's cases are drawn from a generator seeded by the category and the day (counted back from today), never by
the clock, and keep the same external ids (`history_id`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cases.choices import QueueKind
from hitl_project.demo.cases import ID_PREFIXES, LEADS, REFUNDS, SEED, SUPPORT, DemoCase, Skew, make_case
from hitl_project.demo.texts import REGIONS
from reviews.choices import Action

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
