from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.models import Category, InCategoryQuerySet, Incident, ModelVersion
from metrics.choices import AlertAction, AlertKind

# Kinds whose threshold is a share of decisions (0 to 1); the others are ratios or an index.
SHARE_KINDS = frozenset({AlertKind.OVERRIDE_RATE, AlertKind.RUBBER_STAMPING})


class AlertRule(models.Model):
    """A threshold on a KPI over a window that notifies or pauses; every category gets the defaults."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    threshold = models.FloatField(help_text="Rate, relative increase, multiple or PSI, depending on the kind.")
    window_hours = models.PositiveIntegerField(default=1, help_text="The recent window compared with the past.")
    min_count = models.PositiveIntegerField(default=20, help_text="Fewer observations than this never fire.")
    action = models.CharField(max_length=8, choices=AlertAction.choices, default=AlertAction.NOTIFY)
    active = models.BooleanField(default=True)

    history = HistoricalRecords()
    objects = InCategoryQuerySet["AlertRule"].as_manager()

    class Meta:
        ordering = ["category__slug", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["category", "kind"], name="%(app_label)s_%(class)s_one_per_kind"),
            models.CheckConstraint(condition=Q(threshold__gt=0), name="%(app_label)s_%(class)s_threshold_positive"),
            models.CheckConstraint(condition=Q(window_hours__gte=1), name="%(app_label)s_%(class)s_window_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.category.slug}: {self.kind}"  # lists that show a rule select its category with it

    def clean(self) -> None:
        if self.threshold is None or self.threshold <= 0:
            raise ValidationError({"threshold": "Must be greater than 0."})
        if self.kind in SHARE_KINDS and self.threshold > 1:
            raise ValidationError({"threshold": "This kind compares a share: give a number from 0 to 1, e.g. 0.3."})
        if not self.window_hours or self.window_hours < 1:
            raise ValidationError({"window_hours": "Must be at least 1 hour."})


class Alert(models.Model):
    """One firing of a rule: the value seen, the threshold, and what was done."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="alerts")
    subject = models.CharField(max_length=150, blank=True, help_text="Who or what it is about, e.g. a reviewer.")
    fired_at = models.DateTimeField()
    value = models.FloatField()
    threshold = models.FloatField()
    details = models.JSONField(default=dict)
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")

    objects = InCategoryQuerySet["Alert"].as_manager()

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["rule", "subject", "fired_at"], name="metrics_alert_rule_recent")]

    def __str__(self) -> str:
        return f"{self.rule.kind} {self.value:.3g} >= {self.threshold:.3g}"


class ModelVersionPerformance(ModelVersion):
    """Model versions seen through their KPIs (canary beside active, shadow agreement): a read-only view."""

    class Meta:
        proxy = True
        verbose_name = "model version performance"
        verbose_name_plural = "model version performance"


class MetricSnapshot(models.Model):
    """A category's figures over one hour, stored by the hourly `snapshot_metrics` job, so trends over days and
    months read a row an hour instead of rescanning every case and decision.

    The counts are the numerators and denominators of the rates (a day's rate is the sum of its hours' parts, not
    an average of rates); `figures` is the whole KPI answer for the hour, as `metrics.kpis` gives it.
    """

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="metric_snapshots")
    hour = models.DateTimeField(help_text="The start of the hour (UTC) the figures count.")
    volume = models.PositiveIntegerField()
    auto = models.PositiveIntegerField()
    escalated = models.PositiveIntegerField()
    waited = models.PositiveIntegerField()
    breaches = models.PositiveIntegerField()
    verdicts = models.PositiveIntegerField()
    overridden = models.PositiveIntegerField()
    audits = models.PositiveIntegerField()
    confirmed = models.PositiveIntegerField()
    seconds_spent = models.PositiveBigIntegerField()
    time_saved_minutes = models.FloatField()
    figures = models.JSONField(default=dict)
    # The hour's additive parts (`metrics.kpis.parts`), which a longer window's KPIs are summed from, and when
    # they were last read: the job refreshes an hour whose cases were decided after its snapshot.
    parts = models.JSONField(default=dict)
    parts_at = models.DateTimeField(null=True, blank=True)
    # New at every write of `parts`: what a cached sum of stored parts is keyed by (`metrics.kpis.rollup`).
    parts_token = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InCategoryQuerySet["MetricSnapshot"].as_manager()

    class Meta:
        ordering = ["category", "hour"]
        constraints = [
            models.UniqueConstraint(fields=["category", "hour"], name="%(app_label)s_%(class)s_once_per_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.category_id} @ {self.hour:%Y-%m-%d %H:00}"


class DailyParts(models.Model):
    """A category's KPI parts over one UTC day, the sum of its 24 hourly snapshots' parts, kept by the
    `snapshot_metrics` job so that a month's KPIs add up 30 rows rather than 720 (`metrics.kpis.rollup`).

    It holds only while none of its hours was refreshed after it was summed (`parts_at`); otherwise the hours
    are read instead."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="daily_parts")
    day = models.DateTimeField(help_text="The start of the UTC day the parts count.")
    parts = models.JSONField(default=dict)
    parts_at = models.DateTimeField(help_text="When the newest of its hours' parts that it sums was read.")
    parts_token = models.UUIDField(default=uuid.uuid4)

    objects = InCategoryQuerySet["DailyParts"].as_manager()

    class Meta:
        ordering = ["category", "day"]
        verbose_name_plural = "daily parts"
        constraints = [
            models.UniqueConstraint(fields=["category", "day"], name="%(app_label)s_%(class)s_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.category_id} @ {self.day:%Y-%m-%d}"


class TrainingRun(models.Model):
    """One training of a category's built-in model: why it was started, how far it has got, and how it ended (a
    new version in shadow, or a refusal and why). Written by metrics.services.retraining; the admin shows it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done: a new version in shadow"
        REFUSED = "refused", "Refused: the data would not do"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started from the admin"
        COMMAND = "command", "runjob train_model"
        CADENCE = "cadence", "The category's retraining cadence"
        OVERRIDE_ALERT = "override_alert", "The override-rate alert fired"

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="training_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="The share done, 0 to 1.")
    message = models.TextField(blank=True, help_text="What it is doing, or how it ended.")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = InCategoryQuerySet["TrainingRun"].as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["category", "created_at"], name="metrics_trainingrun_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="%(app_label)s_%(class)s_progress_share"
            ),
        ]

    def __str__(self) -> str:
        return f"training #{self.pk} of {self.category_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
