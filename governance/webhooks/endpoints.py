"""Webhook endpoints: registered, changed and given new secrets in the admin, through these services (the writes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from governance.history import save_with_reason
from governance.models import Category, WebhookEndpoint, generate_webhook_secret

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ENDPOINT_FIELDS = ("url", "events", "active", "timeout_seconds", "max_attempts")


@transaction.atomic
def create_endpoint(
    *,
    category: Category,
    url: str,
    events: list[str],
    user: User | None,
    active: bool = True,
    timeout_seconds: int = 5,
    max_attempts: int = 6,
) -> WebhookEndpoint:
    """Register an endpoint for a category's events, with a freshly generated secret."""
    endpoint = WebhookEndpoint(
        category=category,
        url=url,
        events=sorted(set(events)),
        active=active,
        timeout_seconds=timeout_seconds,
        max_attempts=max_attempts,
    )
    endpoint.full_clean()
    save_with_reason(endpoint, user=user, reason="Webhook endpoint registered")
    return endpoint


@transaction.atomic
def update_endpoint(*, endpoint: WebhookEndpoint, user: User | None, changes: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's URL, events, active flag or limits. Its category never changes: pending deliveries
    carry that category's events and must not follow the endpoint anywhere else."""
    unknown = set(changes) - set(ENDPOINT_FIELDS)
    if unknown:
        raise ValueError(f"Not changeable: {sorted(unknown)}")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    for name, value in changes.items():
        setattr(endpoint, name, sorted(set(value)) if name == "events" else value)
    endpoint.full_clean()
    save_with_reason(endpoint, user=user, reason=f"Webhook endpoint changed: {', '.join(sorted(changes))}")
    return endpoint


@transaction.atomic
def rotate_secret(*, endpoint: WebhookEndpoint, user: User | None) -> str:
    """Give the endpoint a new secret (returned, to be shown once); the next attempt of anything is signed with it."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.secret = generate_webhook_secret()
    save_with_reason(endpoint, user=user, reason="Webhook secret rotated")
    return endpoint.secret
