"""The additive parts every KPI is made of, read live over a span of time, or stored per hour in the snapshots.

A rate or a percentile cannot be summed over hours; its parts can: counts, sums, and how many times each value
was seen (for exact percentiles). So a window's KPIs are the sum of its hours' parts (`metrics.kpis.rollup`),
whether those were read from the snapshots or from the cases and decisions themselves, and the figures are
derived from the sum in one place (`metrics.kpis.figures`).

The parts fall in four groups, each one grouped query:
- `cases`: the cases created in the span (volume, routes, confidence buckets; and what became of them: escalated,
  final, acted as proposed, known right or wrong), grouped by the few values the figures need;
- `decisions`: the decisions made in the span, grouped by person, action and seconds spent (and the labels of
  the human verdicts, for the sensitive-label rates);
- `resolution`: the cases made final in the span, by how long it took (in minutes to three significant figures);
- `breaches`: the SLA breaches recorded in the span.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from django.db.models import Case as CaseWhen
from django.db.models import Count, ExpressionWrapper, F, FloatField, Func, IntegerField, Max, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Round, TruncHour
from django.db.models.lookups import LessThan

from cases.choices import AuditStatus, Route
from cases.models import Case, SlaBreach
from cases.selectors import confidence_bucket
from governance.models import Category
from metrics.kpis import conditions
from metrics.kpis.window import Span
from reviews.choices import OVERRIDE_ACTIONS, VERDICT_ACTIONS, Action
from reviews.models import Decision

HISTOGRAM_BINS = 10
ADVISOR_BUCKETS = 100
SECTIONS = frozenset({"cases", "decisions", "resolution", "breaches"})
# Bump when the stored parts change shape: older snapshots are then read live instead of misread.
PARTS_VERSION = 3
_SEP = "\x1f"  # joins the fields of a composite key (action, model label, human label) in a JSON object key
VERSION_FIELDS = ("cases", "auto", "audited", "flagged", "reviewed", "overridden", "shadow_agree", "shadow_total")


class ElapsedSeconds(Func):
    """Seconds from `start` to `end` (two date-times), as a float, on PostgreSQL and SQLite alike."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "EXTRACT(EPOCH FROM (%(expressions)s))::float"
        return self.as_sql(compiler, connection, template=template, arg_joiner=" - ")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django's own SQLite function: microseconds between two timestamps.
        template = "(django_timestamp_diff(%(expressions)s) / 1000000.0)"
        return self.as_sql(compiler, connection, template=template)


def minutes_to_three_figures(seconds: Any) -> CaseWhen:
    """A duration in minutes to three significant figures (0.01 below 10 minutes, 0.1 below 100, whole minutes
    below 1,000, tens above), in SQL: how resolution minutes are counted, so an hour's distinct values stay few
    and a window's median is exact to the figures shown."""
    minutes = ExpressionWrapper(seconds / Value(60.0), output_field=FloatField())
    return CaseWhen(
        When(LessThan(minutes, 10), then=Round(minutes, 2)),
        When(LessThan(minutes, 100), then=Round(minutes, 1)),
        When(LessThan(minutes, 1000), then=Round(minutes, 0)),
        default=Round(minutes / Value(10.0), 0) * Value(10.0),
        output_field=FloatField(),
    )


def _flag(condition: Q) -> CaseWhen:
    return CaseWhen(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def _add_counts(into: dict[str, int], other: dict[str, int]) -> None:
    get = into.get
    for key, n in other.items():
        into[key] = get(key, 0) + n


def _add_lists(into: dict[str, list[int]], other: dict[str, list[int]]) -> None:
    for key, values in other.items():
        have = into.get(key)
        into[key] = list(values) if have is None else [a + b for a, b in zip(have, values, strict=True)]


@dataclass
class Parts:
    """The additive parts of the KPIs over some span of time; `+=` adds another span's."""

    # The cases created in the span.
    volume: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    waited: int = 0
    escalated: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    # Per hundredth of confidence: [cases, known right, known wrong] (the threshold advisor).
    buckets: dict[str, list[int]] = field(default_factory=dict)
    # Per segment (its JSON), of the cases made final: [cases, acted as proposed] (fairness).
    segments: dict[str, list[int]] = field(default_factory=dict)
    # Per model version (its id): its cases [created, auto, audited, flagged by the audit] and the decisions on
    # them [verdicts and audits, overrides, shadow agreements, shadow answers] (`VERSION_FIELDS`).
    versions: dict[str, list[int]] = field(default_factory=dict)
    # The decisions made in the span.
    decisions: int = 0
    verdicts: int = 0
    overridden: int = 0
    audits: int = 0
    confirmed: int = 0
    shadow: int = 0
    shadow_agree: int = 0
    seconds: int = 0
    timed: int = 0
    seconds_counts: dict[str, int] = field(default_factory=dict)
    # Per person: {decisions, approvals, seconds, floor, seconds_counts}.
    reviewers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Human verdicts by action, model label and human label (the sensitive-label rates, for any label).
    verdict_labels: dict[str, int] = field(default_factory=dict)
    # The cases made final in the span, and of those made final by a person, their minutes.
    final: int = 0
    resolved: int = 0
    resolution_counts: dict[str, int] = field(default_factory=dict)
    # The SLA breaches recorded in the span.
    breaches: int = 0

    def __iadd__(self, other: Parts) -> Parts:
        self.volume += other.volume
        self.waited += other.waited
        self.escalated += other.escalated
        self.decisions += other.decisions
        self.verdicts += other.verdicts
        self.overridden += other.overridden
        self.audits += other.audits
        self.confirmed += other.confirmed
        self.shadow += other.shadow
        self.shadow_agree += other.shadow_agree
        self.seconds += other.seconds
        self.timed += other.timed
        self.final += other.final
        self.resolved += other.resolved
        self.breaches += other.breaches
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]
        _add_counts(self.routes, other.routes)
        _add_counts(self.seconds_counts, other.seconds_counts)
        _add_counts(self.verdict_labels, other.verdict_labels)
        _add_counts(self.resolution_counts, other.resolution_counts)
        _add_lists(self.buckets, other.buckets)
        _add_lists(self.segments, other.segments)
        _add_lists(self.versions, other.versions)
        for username, row in other.reviewers.items():
            person = self.reviewers.get(username)
            if person is None:
                self.reviewers[username] = {**row, "seconds_counts": dict(row["seconds_counts"])}
                continue
            person["decisions"] += row["decisions"]
            person["approvals"] += row["approvals"]
            person["seconds"] += row["seconds"]
            person["floor"] = max(person["floor"], row["floor"])
            _add_counts(person["seconds_counts"], row["seconds_counts"])
        return self

    def as_json(self) -> dict[str, Any]:
        return {"version": PARTS_VERSION, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Parts | None:
        """The parts a snapshot stored, or None if they are of another shape (then that hour is read live)."""
        if not isinstance(stored, dict) or stored.get("version") != PARTS_VERSION:
            return None
        return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})

    def verdicts_by_label(self) -> Iterable[tuple[str, str | None, str | None, int]]:
        """(action, model label, human label, n) of the human verdicts."""
        for key, n in self.verdict_labels.items():
            action, model, human = key.split(_SEP)
            yield action, model or None, human or None, n


def percentile(counts: dict[str, int], share: float) -> float | None:
    """The value at `share` of the way through the values counted (nearest rank, as PostgreSQL's
    percentile_disc: the first value whose cumulative share reaches it); None when nothing was counted."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(math.ceil(share * total), 1)
    seen = 0
    for value in sorted(counts, key=float):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return None  # unreachable: the last value's cumulative count is the total


def _key(value: Any) -> str:
    """A number as a JSON object key that reads back as the same number (7.0 and 7 are one key)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def live_parts(category: Category, span: Span, sections: frozenset[str] = SECTIONS) -> Parts:
    """The parts of `sections` over `span`, read from the cases and decisions: one grouped query per section."""
    parts = Parts()
    if not span.empty:
        _read(category, span, sections, lambda row: parts, by_hour=False)
    return parts


def live_parts_by_hour(category: Category, start: datetime, end: datetime) -> dict[datetime, Parts]:
    """Every section's parts of each hour in [start, end) (both on the hour), from the same grouped queries as
    `live_parts` with the hour as one more group: what a backfill of many hours' snapshots reads at once."""
    hours: dict[datetime, Parts] = {}
    span = Span(((start, end),))

    def of_hour(row: dict[str, Any]) -> Parts:
        return hours.setdefault(row["hour"].astimezone(UTC), Parts())

    _read(category, span, SECTIONS, of_hour, by_hour=True)
    return hours


def _read(category: Category, span: Span, sections: frozenset[str], parts_of: PartsOf, *, by_hour: bool) -> None:
    if "cases" in sections:
        _read_cases(
            parts_of,
            _hourly(Case.objects.filter(category=category).filter(span.q("created_at")), "created_at", by_hour),
        )
    if "decisions" in sections:
        decisions = Decision.objects.filter(case__category=category).filter(span.q("created_at"))
        _read_decisions(parts_of, _hourly(decisions, "created_at", by_hour))
    if "resolution" in sections:
        final = Case.objects.filter(category=category, status__in=conditions.MADE_FINAL).filter(span.q("decided_at"))
        _read_resolution(parts_of, _hourly(final, "decided_at", by_hour))
    if "breaches" in sections:
        breaches = SlaBreach.objects.filter(queue__category=category).filter(span.q("detected_at"))
        for row in (
            _hourly(breaches, "detected_at", by_hour).values(*_hour_key(by_hour)).annotate(n=Count("id")).order_by()
        ):
            parts_of(row).breaches += row["n"]


PartsOf = Callable[[dict[str, Any]], "Parts"]


def _hourly(queryset: QuerySet[Any], field: str, by_hour: bool) -> QuerySet[Any]:
    return queryset.annotate(hour=TruncHour(field, tzinfo=UTC)) if by_hour else queryset


def _hour_key(by_hour: bool) -> tuple[str, ...]:
    return ("hour",) if by_hour else ()


def _read_cases(parts_of: PartsOf, cases: QuerySet[Case]) -> None:
    by_hour = "hour" in cases.query.annotations
    rows = (
        cases.annotate(
            tenth=confidence_bucket(HISTOGRAM_BINS),
            hundredth=confidence_bucket(ADVISOR_BUCKETS),
            in_queue=_flag(Q(queue__isnull=False)),
            escalated=_flag(conditions.entered_escalation()),
            made_final=_flag(Q(status__in=conditions.MADE_FINAL)),
            as_proposed=_flag(conditions.acted_as_proposed()),
            right=_flag(conditions.known_right()),
            wrong=_flag(conditions.known_wrong()),
            audited=_flag(Q(audit_status__in=[AuditStatus.CONFIRMED, AuditStatus.FLAGGED])),
            flagged=_flag(Q(audit_status=AuditStatus.FLAGGED)),
        )
        .values(
            *_hour_key(by_hour),
            "model_version_id",
            "route",
            "tenth",
            "hundredth",
            "in_queue",
            "escalated",
            "segment",
            "made_final",
            "as_proposed",
            "right",
            "wrong",
            "audited",
            "flagged",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        parts = parts_of(row)
        n = row["n"]
        parts.volume += n
        parts.routes[row["route"]] = parts.routes.get(row["route"], 0) + n
        parts.waited += n * row["in_queue"]
        parts.escalated += n * row["escalated"]
        parts.histogram[int(row["tenth"])] += n
        bucket = parts.buckets.setdefault(str(int(row["hundredth"])), [0, 0, 0])
        bucket[0] += n
        bucket[1] += n * row["right"]
        bucket[2] += n * row["wrong"]
        version = parts.versions.setdefault(str(row["model_version_id"]), [0] * len(VERSION_FIELDS))
        version[0] += n
        version[1] += n if row["route"] == Route.AUTO else 0
        version[2] += n * row["audited"]
        version[3] += n * row["flagged"]
        segment = row["segment"] if isinstance(row["segment"], dict) else json.loads(row["segment"] or "{}")
        if row["made_final"] and segment:
            tally = parts.segments.setdefault(json.dumps(segment, sort_keys=True), [0, 0])
            tally[0] += n
            tally[1] += n * row["as_proposed"]


def _read_decisions(parts_of: PartsOf, decisions: QuerySet[Decision]) -> None:
    by_hour = "hour" in decisions.query.annotations
    rows = (
        decisions.annotate(in_shadow=_flag(Q(case__route=Route.SHADOW)))
        .values(
            *_hour_key(by_hour), "case__model_version_id", "actor__username", "action", "seconds_spent", "in_shadow"
        )
        .annotate(n=Count("id"), floor=Max("case__queue__review_floor_seconds"))
        .order_by()
    )
    reviewer_actions = {*conditions.HUMAN_VERDICTS, *conditions.AUDIT_VERDICTS}
    for row in rows:
        n, action, seconds, username = row["n"], row["action"], row["seconds_spent"], row["actor__username"]
        parts = parts_of(row)
        parts.decisions += n
        version = parts.versions.setdefault(str(row["case__model_version_id"]), [0] * len(VERSION_FIELDS))
        if row["in_shadow"]:
            version[6] += n if action == Action.APPROVE else 0
            version[7] += n if action in (Action.APPROVE, Action.CORRECT) else 0
        else:
            version[4] += n if action in VERDICT_ACTIONS else 0
            version[5] += n if action in OVERRIDE_ACTIONS else 0
        if action in conditions.HUMAN_VERDICTS and not row["in_shadow"]:
            parts.verdicts += n
            parts.overridden += 0 if action == Action.APPROVE else n
        if action in conditions.AUDIT_VERDICTS:
            parts.audits += n
            parts.confirmed += n if action == Action.CONFIRM else 0
        if row["in_shadow"] and action in (Action.APPROVE, Action.CORRECT):
            parts.shadow += n
            parts.shadow_agree += n if action == Action.APPROVE else 0
        if seconds is not None:
            parts.seconds += seconds * n
            parts.timed += n
            _add_counts(parts.seconds_counts, {_key(seconds): n})
        if username is not None and action in reviewer_actions:
            person = parts.reviewers.setdefault(
                username, {"decisions": 0, "approvals": 0, "seconds": 0, "floor": 0, "seconds_counts": {}}
            )
            person["decisions"] += n
            person["approvals"] += n if action in (Action.APPROVE, Action.CONFIRM) else 0
            person["floor"] = max(person["floor"], row["floor"] or 0)
            if seconds is not None:
                person["seconds"] += seconds * n
                _add_counts(person["seconds_counts"], {_key(seconds): n})
    labelled = (
        decisions.filter(action__in=conditions.HUMAN_VERDICTS)
        .annotate(
            model_label=KeyTextTransform("label", "output_before"),
            human_label=KeyTextTransform("label", "output_after"),
        )
        .values(*_hour_key(by_hour), "action", "model_label", "human_label")
        .annotate(n=Count("id"))
        .order_by()
    )
    for verdict in labelled:
        key = _SEP.join((verdict["action"], verdict["model_label"] or "", verdict["human_label"] or ""))
        counts = parts_of(verdict).verdict_labels
        counts[key] = counts.get(key, 0) + verdict["n"]


def _read_resolution(parts_of: PartsOf, final: QuerySet[Case]) -> None:
    by_hour = "hour" in final.query.annotations
    rows = (
        final.annotate(
            by_person=_flag(Q(status__in=conditions.HUMAN_FINAL)),
            minutes=minutes_to_three_figures(ElapsedSeconds(F("decided_at"), F("created_at"))),
        )
        .values(*_hour_key(by_hour), "by_person", "minutes")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        parts = parts_of(row)
        parts.final += row["n"]
        if row["by_person"]:
            parts.resolved += row["n"]
            _add_counts(parts.resolution_counts, {_key(row["minutes"]): row["n"]})
