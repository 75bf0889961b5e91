"""Every KPI of a category over a window (DESIGN.md, KPIs): the one module of KPI reads.

The dashboard, the metrics API, the snapshots and the alert rules all read their figures here, so a figure means
the same wherever it is shown. Each figure is an aggregate query over the window (a fixed number of queries
whatever the data size; percentiles are computed by the database, `metrics.aggregates`); Python only combines
the few rows that come back (one per route, bucket, segment or reviewer). The JSON keys are DESIGN.md's.

A rate with nothing to count is None (JSON null), not 0: "no override in the window" and "nothing was reviewed"
are different answers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Case as CaseWhen
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cases.choices import AuditStatus, CaseStatus, QueueKind, Route
from cases.models import Case, Queue, SlaBreach
from cases.selectors import confidence_bucket, queue_stats
from governance.models import Category
from governance.permissions import DATA_CURATOR, can_change_category
from metrics.aggregates import PercentileDisc
from metrics.choices import AlertKind
from metrics.models import AlertRule
from metrics.stats import wilson_interval
from reviews.agreement import AgreementFigures, agreement_from_counts
from reviews.choices import Action
from reviews.models import Decision, DecisionQuerySet, DoubleReview

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_WINDOW = "24h"
# The longest window `since`/`until` may span: a year of hourly trends is the most a person reads.
MAX_WINDOW = timedelta(days=366)

HISTOGRAM_BINS = 10
# Human verdicts on a model output (DESIGN.md, override_rate): approve, correct, reject.
HUMAN_VERDICTS = (Action.APPROVE, Action.CORRECT, Action.REJECT)
HUMAN_FINAL = (CaseStatus.APPROVED, CaseStatus.CORRECTED, CaseStatus.REJECTED)
# Made final, by a person or on its own (throughput, fairness).
MADE_FINAL = sorted({*HUMAN_FINAL, CaseStatus.AUTO_APPROVED})
# The four-fifths rule: a value whose approval rate is under 0.8 of the best one's is flagged.
FOUR_FIFTHS = 0.8
FAIRNESS_MIN_N = 20
# Rubber-stamping (DESIGN.md, Time): approval >= 98 % over >= 50 decisions with a median under the queue's floor.
RUBBER_STAMP_APPROVAL = 0.98
RUBBER_STAMP_MIN_DECISIONS = 50
# The threshold advisor: candidate auto thresholds 0.50 .. 0.99, and the known outcomes it needs to advise.
ADVISOR_THRESHOLDS = tuple(round(0.50 + step / 100, 2) for step in range(50))
ADVISOR_MIN_KNOWN = 30


@dataclass(frozen=True)
class Window:
    """A half-open interval of time [start, end) over which the KPIs count."""

    start: datetime
    end: datetime
    name: str = ""

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def days(self) -> float:
        return self.hours / 24

    def previous(self) -> Window:
        """The window of equal length just before this one (the drift reference)."""
        return Window(self.start - (self.end - self.start), self.start)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name or None, "since": self.start.isoformat(), "until": self.end.isoformat()}

    @classmethod
    def last(cls, name: str, now: datetime | None = None) -> Window:
        end = now or timezone.now()
        return cls(end - WINDOWS[name], end, name)

    @classmethod
    def parse(
        cls, *, window: str | None = None, since: str | None = None, until: str | None = None, now: datetime | None
    ) -> Window:
        """The window a request names: `window` (1h, 24h, 7d, 30d, 90d) or `since` (and optionally `until`), ISO
        8601 with an offset. A ValidationError names the parameter that is wrong."""
        now = now or timezone.now()
        if window is not None and (since is not None or until is not None):
            raise ValidationError({"window": "Give either window or since/until, not both."})
        if since is None and until is not None:
            raise ValidationError({"since": "until needs since: give both, or a window."})
        if since is None:
            name = window or DEFAULT_WINDOW
            if name not in WINDOWS:
                raise ValidationError({"window": f"{name!r} is not a window; choose one of {', '.join(WINDOWS)}."})
            return cls.last(name, now)
        start = _instant("since", since)
        end = _instant("until", until) if until is not None else now
        if end <= start:
            raise ValidationError({"until": "until must be after since."})
        if end - start > MAX_WINDOW:
            raise ValidationError({"since": f"A window may span at most {MAX_WINDOW.days} days."})
        return cls(start, end)


def _instant(field: str, text: str) -> datetime:
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationError({field: "Give an ISO 8601 date and time with its offset, e.g. 2026-12-01T09:00:00Z."})
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError({field: "This date and time falls outside the years 1 to 9999 in UTC."}) from exc


# --- small helpers ---


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _interval(successes: int, total: int) -> dict[str, Any]:
    """{n, rate, low, high}: a proportion with its 95 % Wilson interval (rate None when nothing was counted)."""
    low, high = wilson_interval(successes, total)
    return {"n": total, "rate": _rate(successes, total), "low": low if total else None, "high": high if total else None}


def _minutes(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 60, 2)


def psi_from_counts(reference: list[int], current: list[int]) -> float | None:
    """Population stability index of two histograms of the same bins; None when either is empty.

    Empty bins get a small floor so the logarithm stays finite (as `metrics.stats.psi`)."""
    ref_total, cur_total = sum(reference), sum(current)
    if not ref_total or not cur_total:
        return None
    expected = [max(c / ref_total, 1e-4) for c in reference]
    actual = [max(c / cur_total, 1e-4) for c in current]
    return round(sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True)), 4)


def _cases(category: Category, window: Window) -> QuerySet[Case]:
    return Case.objects.filter(category=category, created_at__gte=window.start, created_at__lt=window.end)


def _decisions(category: Category, window: Window) -> DecisionQuerySet:
    return Decision.objects.filter(case__category=category, created_at__gte=window.start, created_at__lt=window.end)


# --- what each figure counts, said once: the figures below and the cases behind them (`cases_behind`) ---


def _entered_escalation() -> Q:
    """A case that entered an escalation or expert queue: it waits in one, the SLA sweep moved it up, or a person
    escalated it (a condition on Case)."""
    moved_up = SlaBreach.objects.filter(
        case=OuterRef("pk"), moved_to__kind__in=[QueueKind.ESCALATION, QueueKind.EXPERT]
    )
    escalated_by_hand = Decision.objects.filter(case=OuterRef("pk"), action=Action.ESCALATE)
    return Q(queue__kind__in=[QueueKind.ESCALATION, QueueKind.EXPERT]) | Exists(moved_up) | Exists(escalated_by_hand)


def _non_shadow_verdict() -> Q:
    """A human verdict on a model output the reviewer saw (a condition on Decision): the override rate's whole."""
    return Q(action__in=HUMAN_VERDICTS) & ~Q(case__route=Route.SHADOW)


def _shadow_verdict() -> Q:
    """A reviewer's own answer in blind review, recorded as approve (agrees) or correct (a condition on Decision)."""
    return Q(case__route=Route.SHADOW, action__in=[Action.APPROVE, Action.CORRECT])


def _audit_verdict() -> Q:
    return Q(action__in=[Action.CONFIRM, Action.FLAG])


def _reviewer_action() -> Q:
    """What a person's row in `reviewers` counts (a condition on Decision): verdicts and audits, by a person."""
    return Q(actor__isnull=False, action__in=[*HUMAN_VERDICTS, Action.CONFIRM, Action.FLAG])


# --- the figures, each one or two queries ---


def case_counts(category: Category, window: Window) -> dict[str, Any]:
    """volume, routes, auto_rate, escalation_rate, and how many cases waited in a queue (one query)."""
    counts = _cases(category, window).aggregate(
        volume=Count("id"),
        escalated=Count("id", filter=_entered_escalation()),
        waited=Count("id", filter=Q(queue__isnull=False)),
        **{route: Count("id", filter=Q(route=route)) for route in Route.values},
    )
    volume = counts["volume"]
    return {
        "volume": volume,
        "routes": {route: counts[route] for route in Route.values},
        "auto_rate": _rate(counts[Route.AUTO], volume),
        "escalation_rate": _rate(counts["escalated"], volume),
        "escalated": counts["escalated"],
        "waited": counts["waited"],
    }


def decision_counts(category: Category, window: Window) -> dict[str, Any]:
    """override_rate, audited_accuracy, shadow_agreement and the minutes people spent (one query)."""
    non_shadow_verdict = _non_shadow_verdict()
    shadow_verdict = _shadow_verdict()
    counts = _decisions(category, window).aggregate(
        verdicts=Count("id", filter=non_shadow_verdict),
        overridden=Count("id", filter=non_shadow_verdict & ~Q(action=Action.APPROVE)),
        audits=Count("id", filter=_audit_verdict()),
        confirmed=Count("id", filter=Q(action=Action.CONFIRM)),
        shadow=Count("id", filter=shadow_verdict),
        shadow_agree=Count("id", filter=shadow_verdict & Q(action=Action.APPROVE)),
        decisions=Count("id"),
        seconds=Sum("seconds_spent"),
        timed=Count("id", filter=Q(seconds_spent__isnull=False)),
    )
    return {
        "override_rate": _rate(counts["overridden"], counts["verdicts"]),
        "verdicts": counts["verdicts"],
        "overridden": counts["overridden"],
        "audits": counts["audits"],
        "confirmed": counts["confirmed"],
        "audited_accuracy": _interval(counts["confirmed"], counts["audits"]),
        "shadow_agreement": _interval(counts["shadow_agree"], counts["shadow"]),
        "decisions": counts["decisions"],
        "seconds_spent": int(counts["seconds"] or 0),
        "timed_decisions": counts["timed"],
        # What a reviewed case costs people, for the advisor's review hours (None when no time was recorded).
        "seconds_per_decision": (counts["seconds"] or 0) / counts["timed"] if counts["timed"] else None,
    }


def refusal_counts(category: Category, window: Window) -> dict[str, int]:
    """The pause rule's figure (DESIGN.md, Time): the window's reviewed outputs (`reviewed`) and those not approved
    as proposed, audit findings included (`overridden`). One query."""
    return _decisions(category, window).override_counts()


def resolution(category: Category, window: Window) -> dict[str, Any]:
    """resolution_minutes {median, p90} of cases a person made final in the window, and throughput_per_hour of
    all cases made final (auto or human) in it (one query)."""
    took = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    by_person = CaseWhen(When(status__in=HUMAN_FINAL, then=took), default=None, output_field=DurationField())
    final = Case.objects.filter(
        category=category,
        decided_at__gte=window.start,
        decided_at__lt=window.end,
        status__in=MADE_FINAL,
    )
    row = final.aggregate(
        final=Count("id"),
        resolved=Count("id", filter=Q(status__in=HUMAN_FINAL)),
        median=PercentileDisc(by_person, 0.5),
        p90=PercentileDisc(by_person, 0.9),
    )
    return {
        "resolution_minutes": {"median": _minutes(row["median"]), "p90": _minutes(row["p90"])},
        "resolved_by_people": row["resolved"],
        "throughput_per_hour": round(row["final"] / window.hours, 4) if window.hours else None,
    }


def review_seconds(category: Category, window: Window) -> dict[str, Any]:
    """review_seconds {median, p90} of the window's decisions that recorded their time (one query)."""
    row = _decisions(category, window).aggregate(
        median=PercentileDisc("seconds_spent", 0.5), p90=PercentileDisc("seconds_spent", 0.9)
    )
    return {"median": row["median"], "p90": row["p90"]}


def sla_breaches(category: Category, window: Window) -> int:
    """SLA breaches recorded in the window (one query); over the cases that waited, the sla_breach_rate."""
    return SlaBreach.objects.filter(
        queue__category=category, detected_at__gte=window.start, detected_at__lt=window.end
    ).count()


def queues(category: Category, now: datetime) -> list[dict[str, Any]]:
    """Each queue of the category as it stands now: depth, oldest age, overdue (three queries)."""
    rows = list(Queue.objects.filter(category=category).order_by("kind"))
    stats = queue_stats(rows, now)
    result = []
    for queue in rows:
        stat = stats[queue.pk]
        oldest = stat.oldest_created_at
        result.append(
            {
                "slug": queue.slug,
                "kind": queue.kind,
                "depth": stat.depth,
                "oldest_age_seconds": None if oldest is None else int((now - oldest).total_seconds()),
                "overdue": stat.overdue,
                "near_breach": stat.near_breach,
            }
        )
    return result


def confidence_histograms(
    category: Category, window: Window, reference: Window | None = None
) -> tuple[list[int], list[int]]:
    """Ten counts over [0, 1] of the window's confidences, and of the reference window's: the previous window of
    equal length unless told (it must end where the window starts). One query."""
    reference = reference or window.previous()
    bucket = confidence_bucket(HISTOGRAM_BINS)
    current_window = Q(created_at__gte=window.start)
    rows = (
        Case.objects.filter(category=category, created_at__gte=reference.start, created_at__lt=window.end)
        .annotate(bucket=bucket, current=CaseWhen(When(current_window, then=1), default=0))
        .values("bucket", "current")
        .annotate(n=Count("id"))
        .order_by()
    )
    current, previous = [0] * HISTOGRAM_BINS, [0] * HISTOGRAM_BINS
    for row in rows:
        (current if row["current"] else previous)[int(row["bucket"])] += row["n"]
    return current, previous


def sensitive_label_rates(category: Category, window: Window) -> dict[str, dict[str, Any]]:
    """For each sensitive label of the policy, false positive and false negative rates from the window's human
    verdicts (one query). A reject counts as the model being wrong; the truth of a reject is unknown, so it
    enters the false positives of the label the model gave and no false negative."""
    labels = list(category.policy.sensitive_labels)
    if not labels:
        return {}
    verdicts = _decisions(category, window).filter(action__in=HUMAN_VERDICTS)
    verdicts = verdicts.annotate(
        model_label=KeyTextTransform("label", "output_before"), human_label=KeyTextTransform("label", "output_after")
    )
    counts: dict[str, Any] = {}
    for index, label in enumerate(labels):
        model_said = Q(model_label=label)
        truth_is = (Q(action=Action.APPROVE) & model_said) | (Q(action=Action.CORRECT) & Q(human_label=label))
        counts |= {
            f"said_{index}": Count("id", filter=model_said),
            f"false_pos_{index}": Count("id", filter=model_said & ~Q(action=Action.APPROVE) & ~Q(human_label=label)),
            f"truth_{index}": Count("id", filter=truth_is),
            f"false_neg_{index}": Count("id", filter=Q(action=Action.CORRECT, human_label=label) & ~model_said),
        }
    row = verdicts.aggregate(**counts)
    return {
        label: {
            "n": row[f"said_{index}"],
            "false_positive_rate": _rate(row[f"false_pos_{index}"], row[f"said_{index}"]),
            "false_negative_rate": _rate(row[f"false_neg_{index}"], row[f"truth_{index}"]),
        }
        for index, label in enumerate(labels)
    }


def fairness(category: Category, window: Window) -> dict[str, Any]:
    """Per segment key, per value: how often the model's output acted as proposed among the window's cases made
    final, and the disparity ratio (lowest over highest rate among values with n >= 20), flagged under 0.8
    (the four-fifths rule). One query, grouped by segment; the few groups are split into keys here."""
    as_proposed = Q(status__in=[CaseStatus.APPROVED, CaseStatus.AUTO_APPROVED]) & ~Q(audit_status=AuditStatus.FLAGGED)
    rows = (
        _cases(category, window)
        .filter(status__in=MADE_FINAL)
        .exclude(segment={})
        .values("segment")
        .annotate(n=Count("id"), approved=Count("id", filter=as_proposed))
        .order_by()
    )
    by_key: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        segment = row["segment"] if isinstance(row["segment"], dict) else json.loads(row["segment"])
        for key, value in segment.items():
            tally = by_key.setdefault(str(key), {}).setdefault(_segment_value(value), [0, 0])
            tally[0] += row["n"]
            tally[1] += row["approved"]
    result: dict[str, Any] = {}
    for key, values in sorted(by_key.items()):
        listed: list[dict[str, Any]] = [
            {"value": value, "n": n, "approval_rate": _rate(approved, n)}
            for value, (n, approved) in sorted(values.items())
        ]
        rates: list[float] = [
            v["approval_rate"] for v in listed if v["n"] >= FAIRNESS_MIN_N and v["approval_rate"] is not None
        ]
        ratio = (min(rates) / max(rates)) if len(rates) >= 2 and max(rates) > 0 else None
        result[key] = {
            "values": listed,
            "disparity_ratio": None if ratio is None else round(ratio, 4),
            "flag": ratio is not None and ratio < FOUR_FIFTHS,
        }
    return result


def _segment_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def agreement(category: Category, window: Window) -> AgreementFigures:
    """Cohen's kappa of the double reviews whose second verdict was given in the window: over all of them, per
    reviewer pair and per reviewer, each with its n (one grouped query)."""
    paired = DoubleReview.objects.filter(
        category=category, second_at__gte=window.start, second_at__lt=window.end
    ).pair_counts()
    return agreement_from_counts(paired)


def reviewers(
    category: Category,
    window: Window,
    *,
    approval_at: float = RUBBER_STAMP_APPROVAL,
    min_decisions: int = RUBBER_STAMP_MIN_DECISIONS,
    kappas: AgreementFigures | None = None,
) -> list[dict[str, Any]]:
    """Per person deciding in the window: decisions, decisions per hour of recorded review time, median seconds,
    approval rate, kappa (their agreement over the double reviews they were part of, `kappas`; None without any)
    and the rubber-stamp flag: approval at or above `approval_at` over at least `min_decisions` with a median under
    the queue's floor (one query)."""
    per_person = kappas.reviewers if kappas is not None else {}
    rows = (
        _decisions(category, window)
        .filter(_reviewer_action())
        .values("actor__username")
        .annotate(
            decisions=Count("id"),
            approvals=Count("id", filter=Q(action__in=[Action.APPROVE, Action.CONFIRM])),
            median_seconds=PercentileDisc("seconds_spent", 0.5),
            seconds=Sum("seconds_spent"),
            floor=Max("case__queue__review_floor_seconds"),
        )
        .order_by("actor__username")
    )
    result = []
    for row in rows:
        approval = _rate(row["approvals"], row["decisions"])
        median_seconds = row["median_seconds"]
        stamping = (
            row["decisions"] >= min_decisions
            and approval is not None
            and approval >= approval_at
            and median_seconds is not None
            and median_seconds < (row["floor"] or 0)
        )
        result.append(
            {
                "username": row["actor__username"],
                "decisions": row["decisions"],
                "per_hour": round(row["decisions"] / (row["seconds"] / 3600), 2) if row["seconds"] else None,
                "median_seconds": median_seconds,
                "approval_rate": approval,
                "kappa": own.kappa if (own := per_person.get(row["actor__username"])) else None,
                "rubber_stamp": stamping,
                "floor_seconds": row["floor"] or 0,
            }
        )
    return result


def sees_every_reviewer(user: User | AnonymousUser, category: Category) -> bool:
    """Superusers, data curators and whoever may change the category see every person's figures (DESIGN.md, KPIs)."""
    return bool(
        user.is_authenticated
        and (user.is_superuser or can_change_category(user, category) or user.groups.filter(name=DATA_CURATOR).exists())
    )


def reviewers_visible_to(rows: list[dict[str, Any]], user: User | AnonymousUser, category: Category) -> list[Any]:
    """Every person's row for those who see every reviewer; one's own row for anyone else (DESIGN.md, KPIs)."""
    if not user.is_authenticated:
        return []
    if sees_every_reviewer(user, category):
        return rows
    return [row for row in rows if row["username"] == user.get_username()]


def _only_own(user: User | AnonymousUser | None, category: Category) -> str | None:
    """Whose pairs `agreement` keeps for this user: None (everyone's) for jobs and for those who see every
    reviewer, their own username otherwise (an anonymous user's is "", which matches nobody)."""
    if user is None or sees_every_reviewer(user, category):
        return None
    return user.get_username() if user.is_authenticated else ""


def threshold_advisor(category: Category, window: Window, *, review_seconds_per_case: float | None) -> list[Any]:
    """For each candidate auto threshold: the share of the window's cases it would let act on their own, the
    error rate among those whose right answer is known (human verdicts and audits) with its Wilson upper bound,
    and the review hours a day the cases below it would leave (one query, bucketed by hundredths of
    confidence). A row with fewer than 30 known outcomes says so (`enough_data` false, no error rate) rather than
    guess."""
    known_right = Q(status=CaseStatus.APPROVED) | Q(audit_status=AuditStatus.CONFIRMED)
    known_wrong = Q(status__in=[CaseStatus.CORRECTED, CaseStatus.REJECTED]) | Q(audit_status=AuditStatus.FLAGGED)
    bucket = confidence_bucket(100)
    rows = (
        _cases(category, window)
        .annotate(bucket=bucket)
        .values("bucket")
        .annotate(n=Count("id"), right=Count("id", filter=known_right), wrong=Count("id", filter=known_wrong))
        .order_by()
    )
    per_bucket = {int(row["bucket"]): (row["n"], row["right"], row["wrong"]) for row in rows}
    total = sum(n for n, _, _ in per_bucket.values())
    seconds = review_seconds_per_case or float(category.baseline_minutes_per_case or Decimal(0)) * 60
    result = []
    for threshold in ADVISOR_THRESHOLDS:
        above = [v for b, v in per_bucket.items() if b >= round(threshold * 100)]
        acting = sum(n for n, _, _ in above)
        right, wrong = sum(r for _, r, _ in above), sum(w for _, _, w in above)
        known = right + wrong
        enough = known >= ADVISOR_MIN_KNOWN
        _, upper = wilson_interval(wrong, known)
        below_per_day = (total - acting) / window.days if window.days else 0.0
        result.append(
            {
                "threshold": threshold,
                "would_act_share": _rate(acting, total),
                "known": known,
                "enough_data": enough,
                "error_rate": _rate(wrong, known) if enough else None,
                "error_rate_upper": round(upper, 4) if enough else None,
                "review_hours_per_day": round(below_per_day * seconds / 3600, 2),
            }
        )
    return result


# --- the cases behind a figure: what a dashboard number links to ---

# Each figure's cases, by the name a link carries (`?kpi=`), and what the list then shows, in words.
FIGURES_BEHIND: dict[str, str] = {
    "created": "created in the window",
    "final": "created in the window and made final",
    "resolved": "made final by a person in the window",
    "escalated": "created in the window that entered an escalation or expert queue",
    "verdict": "given a human verdict (approve, correct, reject) in the window",
    "overridden": "corrected or rejected by a person in the window",
    "audited": "audited in the window",
    "audit_flagged": "flagged by an audit in the window",
    "breached": "past their SLA in the window",
    "shadow": "given a reviewer's own answer in blind review in the window",
    "reviewed": "decided by the reviewer in the window",
}


def cases_behind(figure: str, window: Window, *, reviewer: str = "") -> Q:
    """The condition on Case that picks the cases a figure counts over `window` (with the category's own filter
    beside it), so a number on the dashboard opens the list it came from. A decision-based figure picks each case
    once, however many of its decisions count (the override rate counts decisions: a case corrected twice is one
    row here). `reviewer` (a username) is for `reviewed`, the cases of a person's row."""
    created = Q(created_at__gte=window.start, created_at__lt=window.end)
    if figure == "created":
        return created
    if figure == "final":
        return created & Q(status__in=MADE_FINAL)
    if figure == "resolved":
        return Q(decided_at__gte=window.start, decided_at__lt=window.end, status__in=HUMAN_FINAL)
    if figure == "escalated":
        return created & _entered_escalation()
    if figure == "breached":
        return Q(
            Exists(
                SlaBreach.objects.filter(case=OuterRef("pk"), detected_at__gte=window.start, detected_at__lt=window.end)
            )
        )
    decided: dict[str, Q] = {
        "verdict": _non_shadow_verdict(),
        "overridden": _non_shadow_verdict() & ~Q(action=Action.APPROVE),
        "audited": _audit_verdict(),
        "audit_flagged": Q(action=Action.FLAG),
        "shadow": _shadow_verdict(),
        "reviewed": _reviewer_action() & Q(actor__username=reviewer),
    }
    if figure not in decided:
        raise ValidationError({"kpi": f"{figure!r} is not a figure; choose one of {', '.join(FIGURES_BEHIND)}."})
    if figure == "reviewed" and not reviewer:
        raise ValidationError({"kpi_reviewer": "Name the reviewer whose cases to list."})
    in_window = Decision.objects.filter(
        decided[figure], case=OuterRef("pk"), created_at__gte=window.start, created_at__lt=window.end
    )
    return Q(Exists(in_window))


def time_saved_minutes(category: Category, volume: int, seconds_spent: int) -> float:
    """The minutes the category's cases would have taken people without HITL Desk (its baseline per case), minus
    the minutes people spent on them."""
    return round(volume * float(category.baseline_minutes_per_case or Decimal(0)) - seconds_spent / 60, 2)


def category_kpis(
    category: Category, window: Window, *, user: User | AnonymousUser | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Every KPI of DESIGN.md for one category over one window, with DESIGN.md's keys.

    `user` narrows `reviewers` to what that person may see (None: everyone, for jobs and snapshots)."""
    return category_figures(category, window, user=user, now=now)[0]


def category_figures(
    category: Category, window: Window, *, user: User | AnonymousUser | None = None, now: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`category_kpis`, and what its figures are made of, from the same queries: the counts of each rate's part and
    whole, and the reference histogram of `drift_psi` (`previous_histogram`), for a page that shows "14 of 120"
    beside 12 % and the two histograms side by side, without counting twice."""
    now = now or timezone.now()
    cases = case_counts(category, window)
    decided = decision_counts(category, window)
    current, previous = confidence_histograms(category, window)
    resolved = resolution(category, window)
    advice = threshold_advisor(category, window, review_seconds_per_case=decided["seconds_per_decision"])
    rubber = _rubber_stamp_rule(category)
    kappas = agreement(category, window)
    people = reviewers(category, window, kappas=kappas, **rubber)
    breaches = sla_breaches(category, window)
    figures = {
        "category": category.slug,
        "window": window.as_dict(),
        "volume": cases["volume"],
        "routes": cases["routes"],
        "auto_rate": cases["auto_rate"],
        "override_rate": decided["override_rate"],
        "escalation_rate": cases["escalation_rate"],
        **{key: value for key, value in resolved.items() if key != "resolved_by_people"},
        "review_seconds": review_seconds(category, window),
        "time_saved_minutes": time_saved_minutes(category, cases["volume"], decided["seconds_spent"]),
        "audited_accuracy": decided["audited_accuracy"],
        "sla_breach_rate": _rate(breaches, cases["waited"]),
        "queues": queues(category, now),
        "confidence_histogram": current,
        "drift_psi": psi_from_counts(previous, current),
        "sensitive_labels": sensitive_label_rates(category, window),
        "fairness": fairness(category, window),
        "reviewers": people if user is None else reviewers_visible_to(people, user, category),
        "shadow_agreement": decided["shadow_agreement"],
        "agreement": kappas.as_dict(only_for=_only_own(user, category)),
        "threshold_advisor": advice,
    }
    counts = {
        "volume": cases["volume"],
        "auto": cases["routes"][Route.AUTO],
        "escalated": cases["escalated"],
        "waited": cases["waited"],
        "breaches": breaches,
        "verdicts": decided["verdicts"],
        "overridden": decided["overridden"],
        "audits": decided["audits"],
        "confirmed": decided["confirmed"],
        "seconds_spent": decided["seconds_spent"],
        "resolved_by_people": resolved["resolved_by_people"],
        "previous_histogram": previous,
    }
    return figures, counts


def _rubber_stamp_rule(category: Category) -> dict[str, Any]:
    """The category's own rubber-stamping thresholds (its alert rule), or DESIGN.md's defaults."""
    rule = (
        AlertRule.objects.filter(category=category, kind=AlertKind.RUBBER_STAMPING)
        .only("threshold", "min_count")
        .first()
    )
    if rule is None:
        return {}
    return {"approval_at": rule.threshold, "min_decisions": rule.min_count}
