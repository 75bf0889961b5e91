"""Alert rules (hourly `alert_check`): a threshold on a KPI over a recent window, compared with what came before.

Each kind reads the decisions and cases of one category:
- override_rate: share of reviewed outputs not approved as proposed in the window >= threshold (e.g. 0.30);
- escalation_spike: escalation share in the window >= (1 + threshold) x the share over the previous 24 hours;
- resolution_time: median minutes from intake to a human decision >= threshold x the previous 24 hours' median;
- confidence_drift: PSI of the window's confidences against the previous 7 days >= threshold (0.2 is drift);
- rubber_stamping: a reviewer approving >= threshold of >= min_count decisions with a median decision time
  under the queue's floor (one alert per reviewer).
A rule fires at most once per window and subject; `pause` rules pause the category and open an incident.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from cases.models import Case
from governance.exceptions import Conflict
from governance.history import require_reason, save_with_reason
from governance.models import Category
from governance.permissions import MODEL_STEWARD, can_change_category
from governance.services.notifications import notify, users_in_role
from metrics.choices import AlertAction, AlertKind
from metrics.models import Alert, AlertRule
from metrics.services.pause import pause_automation
from metrics.stats import median, psi
from reviews.choices import VERDICT_ACTIONS, Action
from reviews.models import Decision

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
    value: float
    subject: str = ""
    details: dict[str, Any] | None = None


def _decisions(category: Category, start: datetime, end: datetime) -> Any:
    return Decision.objects.filter(case__category=category, created_at__gte=start, created_at__lt=end)


def _override_rate(rule: AlertRule, start: datetime, now: datetime) -> Iterator[Finding]:
    counts = _decisions(rule.category, start, now).override_counts()
    if counts["reviewed"] >= rule.min_count:
        rate = counts["overridden"] / counts["reviewed"]
        if rate >= rule.threshold:
            yield Finding(rate, details=counts)


def _escalation_share(category: Category, start: datetime, end: datetime) -> tuple[float, int]:
    counts = _decisions(category, start, end).aggregate(
        total=Count("id"), escalated=Count("id", filter=Q(action=Action.ESCALATE))
    )
    return (counts["escalated"] / counts["total"] if counts["total"] else 0.0), counts["total"]


def _escalation_spike(rule: AlertRule, start: datetime, now: datetime) -> Iterator[Finding]:
    current, total = _escalation_share(rule.category, start, now)
    baseline, _ = _escalation_share(rule.category, start - BASELINE, start)
    if total >= rule.min_count and baseline > 0 and current >= baseline * (1 + rule.threshold):
        yield Finding(current / baseline - 1, details={"current": current, "baseline": baseline, "decisions": total})


def _resolution_minutes(category: Category, start: datetime, end: datetime) -> list[float]:
    pairs = Case.objects.filter(category=category, decided_at__gte=start, decided_at__lt=end).exclude(
        status="auto_approved"
    )
    return [(d - c).total_seconds() / 60 for c, d in pairs.values_list("created_at", "decided_at") if d]


def _resolution_time(rule: AlertRule, start: datetime, now: datetime) -> Iterator[Finding]:
    current = _resolution_minutes(rule.category, start, now)
    baseline = _resolution_minutes(rule.category, start - BASELINE, start)
    current_median, baseline_median = median(current), median(baseline)
    if len(current) >= rule.min_count and current_median and baseline_median:
        ratio = current_median / baseline_median
        if ratio >= rule.threshold:
            yield Finding(ratio, details={"median_minutes": current_median, "baseline_minutes": baseline_median})


def _confidences(category: Category, start: datetime, end: datetime) -> list[float]:
    rows = Case.objects.filter(category=category, created_at__gte=start, created_at__lt=end)
    return list(rows.values_list("confidence", flat=True)[:100_000])


def _confidence_drift(rule: AlertRule, start: datetime, now: datetime) -> Iterator[Finding]:
    current = _confidences(rule.category, start, now)
    reference = _confidences(rule.category, start - DRIFT_REFERENCE, start)
    if len(current) >= rule.min_count and len(reference) >= rule.min_count:
        index = psi(reference, current)
        if index >= rule.threshold:
            yield Finding(index, details={"cases": len(current), "reference_cases": len(reference)})


def _rubber_stamping(rule: AlertRule, start: datetime, now: datetime) -> Iterator[Finding]:
    by_reviewer: dict[str, list[tuple[str, int | None, int]]] = defaultdict(list)
    rows = _decisions(rule.category, start, now).filter(actor__isnull=False, action__in=sorted(VERDICT_ACTIONS))
    for username, action, seconds, floor in rows.values_list(
        "actor__username", "action", "seconds_spent", "case__queue__review_floor_seconds"
    ):
        by_reviewer[username].append((action, seconds, floor or 0))
    for username, decisions in by_reviewer.items():
        if len(decisions) < rule.min_count:
            continue
        approvals = sum(1 for action, _, _ in decisions if action in (Action.APPROVE, Action.CONFIRM))
        share = approvals / len(decisions)
        times = [s for _, s, _ in decisions if s is not None]
        floor = max(f for _, _, f in decisions)
        median_seconds = median(times)
        if share >= rule.threshold and median_seconds is not None and median_seconds < floor:
            yield Finding(
                share,
                subject=username,
                details={"decisions": len(decisions), "median_seconds": median_seconds, "floor_seconds": floor},
            )


EVALUATORS = {
    AlertKind.OVERRIDE_RATE: _override_rate,
    AlertKind.ESCALATION_SPIKE: _escalation_spike,
    AlertKind.RESOLUTION_TIME: _resolution_time,
    AlertKind.CONFIDENCE_DRIFT: _confidence_drift,
    AlertKind.RUBBER_STAMPING: _rubber_stamping,
}


def evaluate(rule: AlertRule, *, now: datetime | None = None) -> list[Alert]:
    """Fire the rule for each finding not already alerted within its window; apply its action."""
    now = now or timezone.now()
    start = now - timedelta(hours=rule.window_hours)
    fired: list[Alert] = []
    for finding in EVALUATORS[AlertKind(rule.kind)](rule, start, now):
        if Alert.objects.filter(rule=rule, subject=finding.subject, fired_at__gt=start).exists():
            continue
        fired.append(_fire(rule, finding, now))
    return fired


@transaction.atomic
def _fire(rule: AlertRule, finding: Finding, now: datetime) -> Alert:
    category = rule.category
    label = AlertKind(rule.kind).label
    about = f" ({finding.subject})" if finding.subject else ""
    text = f"{category.slug}: {label}{about}: {finding.value:.3g} against {rule.threshold:.3g}"
    alert = Alert.objects.create(
        rule=rule,
        category=category,
        subject=finding.subject,
        fired_at=now,
        value=finding.value,
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
                    evidence={"alert_id": alert.pk, "value": finding.value, **(finding.details or {})},
                    contained_by="automation paused by an alert rule",
                    notify_subject=f"{category.slug} paused by an alert: {text}",
                )
            alert.save(update_fields=["incident"])
        except Conflict:
            pass  # paused meanwhile: the alert stands, the pause already happened
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
