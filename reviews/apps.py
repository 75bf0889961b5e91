from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import AppConfig

# The payload keys of a decision's audit event that bind the decision to it.
DECISION_ID_KEY = "decision_id"
DECISION_DIGEST_KEY = "decision_digest"


def decision_contents() -> Iterator[tuple[int, dict[str, Any]]]:
    from reviews.models import Decision  # the models are ready only once the app registry is

    for decision in Decision.objects.order_by("pk").iterator(chunk_size=5000):
        yield decision.pk, decision.bound_content()


class ReviewsConfig(AppConfig):
    """People at work: claims, decisions, escalations, audits of auto cases, labels."""

    name = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        from governance import events

        # Every decision is bound to the audit event that recorded it: `verify_audit` names one that was altered,
        # deleted, or added without an event.
        events.register_binding(
            events.Binding(
                name="decision", payload_key=DECISION_ID_KEY, digest_key=DECISION_DIGEST_KEY, rows=decision_contents
            )
        )
