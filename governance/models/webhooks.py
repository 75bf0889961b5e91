"""Webhooks' rows: a category's endpoints, one delivery per event and endpoint, and each attempt at sending it
(governance.webhooks manages and sends them)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.choices import DeliveryStatus, WebhookEvent
from governance.models.categories import Category
from governance.permissions import changeable_category_ids

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def generate_webhook_secret() -> str:
    """A new endpoint's signing key (and a rotated one's): 256 random bits, as hex."""
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
