from __future__ import annotations

import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.choices import (
    AuditKind,
    Consequence,
    DeliveryStatus,
    IncidentStage,
    ModelStatus,
    Pattern,
    Stage,
    WebhookEvent,
)
from governance.permissions import (
    changeable_category_ids,
    has_global_category_view,
    visible_case_ids,
    visible_category_ids,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def default_audit_multipliers() -> dict[str, float]:
    """Strata that deserve more eyes (DESIGN.md, Routing): each multiplies the audit rate."""
    return {"near_threshold": 3.0, "top_decile_value": 2.0, "new_segment": 2.0, "canary": 3.0}


class CategoryQuerySet(models.QuerySet["Category"]):
    def visible_to(self, user: User | AnonymousUser) -> CategoryQuerySet:
        """Categories the user may see: by object grant on the category or one of its queues, or a global grant."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        return self.filter(pk__in=visible_category_ids(user))


class Category(models.Model):
    """One kind of automated decision (e.g. refund approvals) with its review pattern, stage and pause state."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    pattern = models.CharField(max_length=16, choices=Pattern.choices, default=Pattern.EXCEPTION)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.LIVE)
    consequence = models.CharField(max_length=16, choices=Consequence.choices, default=Consequence.MEDIUM)
    paused = models.BooleanField(default=False, help_text="Automation off: every case goes to a human first.")
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paused_reason = models.TextField(blank=True)
    resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="The pause trigger never looks back past the last resume."
    )
    pii_fields = models.JSONField(
        default=list, blank=True, help_text="Input field names that always hold personal data, e.g. ['email']."
    )
    retention_days = models.PositiveIntegerField(default=365)
    baseline_minutes_per_case = models.DecimalField(
        max_digits=7, decimal_places=2, default=Decimal("5.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "categories"
        permissions = [("submit_case", "Can submit cases to this category")]
        constraints = [
            models.CheckConstraint(
                condition=Q(pattern__in=Pattern.values), name="%(app_label)s_%(class)s_pattern_valid"
            ),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="%(app_label)s_%(class)s_stage_valid"),
        ]

    def __str__(self) -> str:
        return self.slug


class Policy(models.Model):
    """A category's routing rules. Every change increments `version`; simple-history keeps each one with a reason."""

    category = models.OneToOneField(Category, on_delete=models.CASCADE, related_name="policy")
    version = models.PositiveIntegerField(default=1, editable=False)
    auto_threshold = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Confidence at or above which an output may act on its own.",
    )
    review_threshold = models.FloatField(
        default=0.70,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Below this confidence a case gets a full review.",
    )
    auto_share = models.FloatField(
        default=100.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="The ramp, in percent: the share of auto-eligible cases that may act; the rest get a quick review.",
    )
    high_value_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="A case worth this much or more always gets a full review. Empty: no limit.",
    )
    sensitive_labels = models.JSONField(default=list, blank=True, help_text="Predicted labels that force full review.")
    sensitive_rules = models.JSONField(default=list, blank=True, help_text="Fired rules that force full review.")
    audit_rate = models.FloatField(
        default=0.02,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction (0-1) of auto-approved cases drawn for audit, before stratum multipliers.",
    )
    audit_multipliers = models.JSONField(default=default_audit_multipliers, blank=True)
    pause_rejection_rate = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction (0-1) of reviewed cases not approved as proposed that pauses the category.",
    )
    pause_window_hours = models.PositiveIntegerField(default=48, validators=[MinValueValidator(1)])
    pause_min_reviews = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(review_threshold__gte=0)
                & Q(review_threshold__lt=models.F("auto_threshold"))
                & Q(auto_threshold__lte=1),
                name="%(app_label)s_%(class)s_thresholds_ordered",
            ),
            models.CheckConstraint(
                condition=Q(auto_share__gte=0) & Q(auto_share__lte=100), name="%(app_label)s_%(class)s_auto_share_pct"
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1), name="%(app_label)s_%(class)s_audit_rate_frac"
            ),
            models.CheckConstraint(
                condition=Q(pause_rejection_rate__gte=0) & Q(pause_rejection_rate__lte=1),
                name="%(app_label)s_%(class)s_pause_rate_frac",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category.slug} policy v{self.version}"

    def clean(self) -> None:
        thresholds_set = self.review_threshold is not None and self.auto_threshold is not None
        if thresholds_set and not 0 <= self.review_threshold < self.auto_threshold <= 1:
            raise ValidationError({"review_threshold": "Must hold 0 <= review_threshold < auto_threshold <= 1."})
        if not isinstance(self.sensitive_labels, list) or not all(isinstance(x, str) for x in self.sensitive_labels):
            raise ValidationError({"sensitive_labels": "Must be a list of label strings."})
        if not isinstance(self.sensitive_rules, list) or not all(isinstance(x, str) for x in self.sensitive_rules):
            raise ValidationError({"sensitive_rules": "Must be a list of rule names."})
        validate_audit_multipliers(self.audit_multipliers)


def validate_audit_multipliers(value: Any) -> None:
    known = set(default_audit_multipliers())
    if not isinstance(value, dict):
        raise ValidationError({"audit_multipliers": "Must be an object of stratum -> multiplier."})
    unknown = set(value) - known
    if unknown:
        raise ValidationError(
            {"audit_multipliers": f"Unknown strata {sorted(unknown)}; known strata are {sorted(known)}."}
        )
    for key, factor in value.items():
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 0:
            raise ValidationError({"audit_multipliers": f"The multiplier for {key!r} must be a number >= 0."})


class ModelVersionQuerySet(models.QuerySet["ModelVersion"]):
    def visible_to(self, user: User | AnonymousUser) -> ModelVersionQuerySet:
        return self.filter(category__in=Category.objects.visible_to(user))


class ModelVersion(models.Model):
    """A version of a model that makes a category's predictions, and where it stands in its rollout."""

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="model_versions")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.REGISTERED)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, help_text="Deployment notes.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation metrics.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["category__slug", "name", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "name", "version"], name="%(app_label)s_%(class)s_unique_per_category"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ModelStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def visible_to(self, user: User | AnonymousUser) -> AuditEventQuerySet:
        """Events of the cases the user may see, and category-level events of the categories they may see."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        # Which cases the user sees is the cases layer's rule, registered from above (governance.permissions).
        of_visible_cases = Q()
        for case_ids in visible_case_ids(user):
            of_visible_cases |= Q(case_id__in=case_ids)
        return self.filter(
            of_visible_cases
            | Q(case_id__isnull=True, category_slug__in=Category.objects.visible_to(user).values("slug"))
        )


class AuditEvent(models.Model):
    """One row of the append-only, hash-chained audit log (governance.events says what the chain proves).

    Each category has its own chain (`category_slug`, "" for events of no category) numbered by `seq`;
    `hash` is HMAC-SHA256(AUDIT_KEY, the chain's previous hash + this row's canonical JSON). The database refuses
    UPDATE, DELETE and TRUNCATE (triggers created by migration). References are plain values, not foreign keys,
    so nothing elsewhere can ever need to change or remove a row here.
    """

    seq = models.PositiveBigIntegerField(editable=False, help_text="The row's place in its category's chain.")
    created_at = models.DateTimeField(editable=False)
    kind = models.CharField(max_length=40, choices=AuditKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="The acting user's id; empty for the system.")
    actor_username = models.CharField(max_length=150, help_text="The acting user's name at the time, or 'system'.")
    category_slug = models.CharField(max_length=64, blank=True)
    case_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["category_slug", "seq"], name="%(app_label)s_%(class)s_chain_seq_unique")
        ]
        indexes = [models.Index(fields=["kind", "created_at"], name="governance_audit_kind_created")]

    def __str__(self) -> str:
        return f"{self.category_slug or '(global)'} #{self.seq} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """Where one category's chain ends; locking it keeps that chain's appends in one line across processes, while
    other categories' chains go on beside it. The database lets it move only forward."""

    chain = models.CharField(max_length=64, unique=True, help_text="The category's slug; empty for the global chain.")
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self) -> str:
        return f"audit chain {self.chain or '(global)'} at #{self.seq}"


class Notification(models.Model):
    """A notice for one person, shown in the admin and sent by e-mail (governance.notifications.notify)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Where to act, e.g. the case or queue page.")
    kind = models.CharField(max_length=40, blank=True, help_text="What it is about, e.g. sla.warning.")
    category_slug = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "created_at"], name="governance_notice_user_unread")]

    def __str__(self) -> str:
        return self.subject


class Incident(models.Model):
    """Something went wrong with automation: detect -> contain -> investigate -> remediate -> communicate -> closed.

    Opened by an automatic pause or an alert, or by hand; its timeline (IncidentEntry) says who did what.
    """

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="incidents")
    title = models.CharField(max_length=200)
    stage = models.CharField(max_length=16, choices=IncidentStage.choices, default=IncidentStage.DETECT)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    trigger = models.CharField(max_length=40, blank=True, help_text="What opened it: pause_rule, alert, manual.")
    evidence = models.JSONField(default=dict, blank=True, help_text="The numbers that opened it.")
    affected_case_ids = models.JSONField(default=list, blank=True)
    root_cause = models.TextField(blank=True)
    remediation = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=IncidentStage.values), name="%(app_label)s_%(class)s_stage_valid"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class IncidentEntry(models.Model):
    """One line of an incident's timeline: a stage change or a note, by a person or the system."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stage = models.CharField(max_length=16, choices=IncidentStage.choices)
    note = models.TextField()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "incident timeline entries"

    def __str__(self) -> str:
        return f"{self.stage}: {self.note[:60]}"


def generate_webhook_secret() -> str:
    return secrets.token_hex(32)


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def visible_to(self, user: User | AnonymousUser) -> WebhookEndpointQuerySet:
        """Endpoints of the categories the user may change: a URL and its secret are the category owner's
        settings, so seeing a category's cases is not enough."""
        category_ids = changeable_category_ids(user)
        return self.all() if category_ids is None else self.filter(category_id__in=category_ids)


class WebhookEndpoint(models.Model):
    """A receiver of one category's events: each subscribed event is POSTed to `url`, signed with `secret`."""

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where each event is POSTed as JSON. Redirects are not followed.",
    )
    events = models.JSONField(default=list, help_text="The events sent to this endpoint.")
    secret = models.CharField(
        max_length=128,
        default=generate_webhook_secret,
        editable=False,
        help_text="The HMAC-SHA256 key of the X-HITL-Signature header.",
    )
    active = models.BooleanField(default=True, help_text="An inactive endpoint gets no new deliveries.")
    timeout_seconds = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="How long one attempt may wait for the receiver.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=6,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Attempts before a delivery is given up as failed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(excluded_fields=["secret"])
    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["category__slug", "url", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=1) & Q(timeout_seconds__lte=30),
                name="%(app_label)s_%(class)s_timeout_range",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1) & Q(max_attempts__lte=20),
                name="%(app_label)s_%(class)s_attempts_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category.slug} -> {self.url}"

    def clean(self) -> None:
        validate_webhook_events(self.events)


def validate_webhook_events(value: Any) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise ValidationError({"events": "Choose at least one event."})
    unknown = sorted(set(value) - set(WebhookEvent.values))
    if unknown:
        raise ValidationError({"events": f"Unknown events {unknown}; known events are {sorted(WebhookEvent.values)}."})


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def visible_to(self, user: User | AnonymousUser) -> WebhookDeliveryQuerySet:
        category_ids = changeable_category_ids(user)
        return self.all() if category_ids is None else self.filter(endpoint__category_id__in=category_ids)

    def due(self, now: Any) -> WebhookDeliveryQuerySet:
        """Pending deliveries whose next attempt is due and that no worker is sending right now."""
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
            Q(sending_until__isnull=True) | Q(sending_until__lt=now)
        )


class WebhookDelivery(models.Model):
    """One audit event for one endpoint: the exact body sent, where it stands, and when it is tried next.

    Created in the transaction that records the event, so it exists exactly when the event does; the unique
    (endpoint, event) pair makes it once per event. `sending_until` is the lease a worker takes (by conditional
    update) before it sends, so two workers never send it at once; a succeeded delivery is never sent again.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    event_seq = models.PositiveBigIntegerField(help_text="The audit event's sequence number (its `id` in the body).")
    event_kind = models.CharField(max_length=40, choices=WebhookEvent.choices)
    case_id = models.BigIntegerField(null=True, blank=True)
    body = models.TextField(help_text="The exact JSON sent (and signed), the same on every attempt.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_until = models.DateTimeField(null=True, blank=True, help_text="A worker is sending it until then.")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_seq"], name="%(app_label)s_%(class)s_once_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
        ]
        indexes = [
            # The periodic catch-up reads only pending rows: a partial index stays as small as the backlog.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status=DeliveryStatus.PENDING), name="governance_webhook_due"
            ),
            # The endpoint list counts each endpoint's pending and failed deliveries from this index alone.
            models.Index(fields=["endpoint", "status"], name="governance_webhook_ep_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event_kind} #{self.event_seq} -> {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: when, how long it took, and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="%(app_label)s_%(class)s_number_once")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error[:40]}"
