"""Alert rules (hourly `alert_check`): a threshold on a KPI over a recent window, compared with what came before.

Each kind reads the decisions and cases of one category:
- override_rate: share of reviewed outputs not approved as proposed in the window >= threshold (e.g. 0.30);
- escalation_spike: escalation share in the window >= (1 + threshold) x the share over the previous 24 hours;
- resolution_time: median minutes from intake to a human decision >= threshold x the previous 24 hours' median;
- confidence_drift: PSI of the window's confidences against the previous 7 days >= threshold (0.2 is drift);
- rubber_stamping: a reviewer approving >= threshold of >= min_count decisions with a median decision time
  under the queue's floor (one alert per reviewer); a batch approval counts as one decision per case, with its
  share of the batch's time, and the alert says how many of the decisions were batched.
A rule fires at most once per window and subject; `pause` rules pause the category and open an incident.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.exceptions import Conflict
from governance.history import require_reason, save_with_reason
from governance.models import Category
from governance.permissions import MODEL_STEWARD, can_change_category
from governance.services.notifications import notify, users_in_role
from metrics import kpis
from metrics.choices import AlertAction, AlertKind
from metrics.models import Alert, AlertRule, TrainingRun
from metrics.services.pause import pause_automation
from metrics.services.retraining import request_training

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BASELINE = timedelta(hours=24)
DRIFT_REFERENCE = timedelta(days=7)

# kind -> (threshold, window hours, minimum count): sensible starting points, editable per category.
DEFAULT_RULES: dict[str, tuple[float, int, int]] = {
    AlertKind.OVERRIDE_RATE: (0.30, 24, 20),
    AlertKind.ESCALATION_SPIKE: (0.20, 1, 20),
    AlertKind.RESOLUTION_TIME: (2.0, 24, 20),
    AlertKind.CONFIDENCE_DRIFT: (0.20, 24, 100),
    AlertKind.RUBBER_STAMPING: (0.98, 24, 50),
}


def create_default_rules(category: Category) -> list[AlertRule]:
    return [
        AlertRule.objects.get_or_create(
            category=category,
            kind=kind,
            defaults={"threshold": threshold, "window_hours": hours, "min_count": minimum},
        )[0]
        for kind, (threshold, hours, minimum) in DEFAULT_RULES.items()
    ]


# What may change on a rule; its category and kind are what it is.
EDITABLE_RULE_FIELDS = ("threshold", "window_hours", "min_count", "action", "active")


@transaction.atomic
def update_alert_rule(*, rule: AlertRule, user: User, changes: dict[str, Any], reason: str) -> AlertRule:
    """Change a rule's threshold, window, minimum, action or activity, with a reason in its history. Needs
    `governance.change_category` on the rule's category (globally or on it)."""
    if not can_change_category(user, rule.category):
        raise PermissionDenied(f"Changing the alert rules of {rule.category.slug!r} needs governance.change_category.")
    reason = require_reason(reason)
    unknown = sorted(set(changes) - set(EDITABLE_RULE_FIELDS))
    if unknown:
        raise ValidationError(
            {unknown[0]: f"Not editable; an alert rule's editable fields are {EDITABLE_RULE_FIELDS}."}
        )
    rule = AlertRule.objects.select_for_update().select_related("category").get(pk=rule.pk)
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.full_clean(exclude=["category"], validate_unique=False)
    save_with_reason(rule, user=user, reason=reason)
    return rule


@dataclass(frozen=True)
class Finding:
    """What a rule measures now: `value` (the figure its threshold is compared with; None while there is nothing to
    compare), the `count` of observations it rests on, and whether it `fires` (enough of them, at or over the
    threshold). The admin shows the same figure beside the threshold that `evaluate` fires on."""

    value: float | None
    count: int = 0
    fires: bool = False
    subject: str = ""
    details: dict[str, Any] | None = None


# Each measure reads its figure from metrics.kpis, where the dashboard and the API read it too.


def _override_rate(rule: AlertRule, window: kpis.Window) -> Iterator[Finding]:
    counts = kpis.decision_counts(rule.category, window)
    rate = counts["override_rate"]
    yield Finding(
        rate,
        count=counts["verdicts"],
        fires=counts["verdicts"] >= rule.min_count and rate is not None and rate >= rule.threshold,
        details={"reviewed": counts["verdicts"], "refused": counts["overridden"]},
    )


def _escalation_spike(rule: AlertRule, window: kpis.Window) -> Iterator[Finding]:
    current = kpis.case_counts(rule.category, window)
    baseline = kpis.case_counts(rule.category, kpis.Window(window.start - BASELINE, window.start))
    now_rate, then_rate = current["escalation_rate"], baseline["escalation_rate"]
    spiking = now_rate is not None and bool(then_rate) and now_rate >= then_rate * (1 + rule.threshold)
    yield Finding(
        now_rate / then_rate - 1 if now_rate is not None and then_rate else None,
        count=current["volume"],
        fires=current["volume"] >= rule.min_count and spiking,
        details={"current": now_rate, "baseline": then_rate, "cases": current["volume"]},
    )


def _resolution_time(rule: AlertRule, window: kpis.Window) -> Iterator[Finding]:
    current = kpis.resolution(rule.category, window)
    baseline = kpis.resolution(rule.category, kpis.Window(window.start - BASELINE, window.start))
    current_median = current["resolution_minutes"]["median"]
    baseline_median = baseline["resolution_minutes"]["median"]
    ratio = current_median / baseline_median if current_median and baseline_median else None
    yield Finding(
        ratio,
        count=current["resolved_by_people"],
        fires=current["resolved_by_people"] >= rule.min_count and ratio is not None and ratio >= rule.threshold,
        details={"median_minutes": current_median, "baseline_minutes": baseline_median},
    )


def _confidence_drift(rule: AlertRule, window: kpis.Window) -> Iterator[Finding]:
    reference = kpis.Window(window.start - DRIFT_REFERENCE, window.start)
    current, before = kpis.confidence_histograms(rule.category, window, reference)
    index = kpis.psi_from_counts(before, current)
    enough = sum(current) >= rule.min_count and sum(before) >= rule.min_count
    yield Finding(
        index,
        count=min(sum(current), sum(before)),
        fires=enough and index is not None and index >= rule.threshold,
        details={"cases": sum(current), "reference_cases": sum(before)},
    )


def _rubber_stamping(rule: AlertRule, window: kpis.Window) -> Iterator[Finding]:
    """One finding per reviewer with enough decisions; it fires for those who approve nearly everything, too fast."""
    people = kpis.reviewers(rule.category, window, approval_at=rule.threshold, min_decisions=rule.min_count)
    batched = kpis.batch_decision_counts(rule.category, window) if any(p["rubber_stamp"] for p in people) else {}
    for person in people:
        yield Finding(
            person["approval_rate"],
            count=person["decisions"],
            fires=bool(person["rubber_stamp"]),
            subject=person["username"],
            details={
                "decisions": person["decisions"],
                # Of those, the approvals made in batches (each counted with its share of the batch's time).
                "batch_decisions": batched.get(person["username"], 0),
                "median_seconds": person["median_seconds"],
                "floor_seconds": person["floor_seconds"],
            },
        )


MEASURES = {
    AlertKind.OVERRIDE_RATE: _override_rate,
    AlertKind.ESCALATION_SPIKE: _escalation_spike,
    AlertKind.RESOLUTION_TIME: _resolution_time,
    AlertKind.CONFIDENCE_DRIFT: _confidence_drift,
    AlertKind.RUBBER_STAMPING: _rubber_stamping,
}


def rule_window(rule: AlertRule, now: datetime) -> kpis.Window:
    return kpis.Window(now - timedelta(hours=rule.window_hours), now)


def current_finding(rule: AlertRule, *, now: datetime | None = None) -> Finding | None:
    """The rule's figure over its window ending now: what its threshold is compared with. For a rule with one
    finding per subject (rubber-stamping), the one that fires, else the highest; None with nothing measured."""
    findings = list(MEASURES[AlertKind(rule.kind)](rule, rule_window(rule, now or timezone.now())))
    if not findings:
        return None
    return max(findings, key=lambda f: (f.fires, f.value is not None, f.value or 0.0))


def evaluate(rule: AlertRule, *, now: datetime | None = None) -> list[Alert]:
    """Fire the rule for each finding not already alerted within its window; apply its action."""
    now = now or timezone.now()
    window = rule_window(rule, now)
    fired: list[Alert] = []
    for finding in MEASURES[AlertKind(rule.kind)](rule, window):
        if not finding.fires or finding.value is None:
            continue
        if Alert.objects.filter(rule=rule, subject=finding.subject, fired_at__gt=window.start).exists():
            continue
        fired.append(_fire(rule, finding, now))
    return fired


@transaction.atomic
def _fire(rule: AlertRule, finding: Finding, now: datetime) -> Alert:
    value = finding.value
    assert value is not None  # evaluate fires only on a measured value
    category = rule.category
    label = AlertKind(rule.kind).label
    about = f" ({finding.subject})" if finding.subject else ""
    text = f"{category.slug}: {label}{about}: {value:.3g} against {rule.threshold:.3g}"
    alert = Alert.objects.create(
        rule=rule,
        category=category,
        subject=finding.subject,
        fired_at=now,
        value=value,
        threshold=rule.threshold,
        details=finding.details or {},
    )
    if rule.action == AlertAction.PAUSE and not category.paused:
        try:
            with transaction.atomic():
                alert.incident = pause_automation(
                    category=category,
                    reason=f"Alert: {text}",
                    title=f"Alert: {text}",
                    trigger="alert",
                    evidence={"alert_id": alert.pk, "value": value, **(finding.details or {})},
                    contained_by="automation paused by an alert rule",
                    notify_subject=f"{category.slug} paused by an alert: {text}",
                )
            alert.save(update_fields=["incident"])
        except Conflict:
            pass  # paused meanwhile: the alert stands, the pause already happened
    if rule.kind == AlertKind.OVERRIDE_RATE:
        # People keep overriding the model: a built-in model trained on what they said instead is worth a try
        # (DESIGN.md, Feedback loop); it lands in shadow and must beat the active version before it acts.
        request_training(category=category, user=None, trigger=TrainingRun.Trigger.OVERRIDE_ALERT)
    link = reverse("admin:metrics_alert_change", args=[alert.pk])
    transaction.on_commit(
        lambda: notify(
            users_in_role(MODEL_STEWARD),
            subject=text,
            body=f"Details: {finding.details or {}}",
            link=link,
            kind=f"alert.{rule.kind}",
            category_slug=category.slug,
        )
    )
    return alert


def check_all(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Evaluate every active rule; returns one line per alert fired."""
    fired: list[dict[str, Any]] = []
    for rule in AlertRule.objects.filter(active=True).select_related("category"):
        for alert in evaluate(rule, now=now):
            fired.append(
                {
                    "category": rule.category.slug,
                    "kind": rule.kind,
                    "subject": alert.subject,
                    "value": round(alert.value, 4),
                    "threshold": alert.threshold,
                }
            )
    return fired
