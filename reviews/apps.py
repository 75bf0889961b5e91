from __future__ import annotations

from django.apps import AppConfig

# The payload keys of a decision's audit event that bind the decision to it.
DECISION_ID_KEY = "decision_id"
DECISION_DIGEST_KEY = "decision_digest"


class ReviewsConfig(AppConfig):
    """People at work: claims, decisions, escalations, audits of auto cases, labels."""

    name = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        # What reviews adds to the layers below it, registered from here (the models are ready now, not at import).
        from django.db.models import Prefetch

        from cases.api.serializers import CASE_FIELDS
        from cases.links import register_queue_work_page
        from governance import events
        from governance.api.fields import ExtraField
        from reviews.api.serializers import CaseDecisionSerializer
        from reviews.links import work_list_url
        from reviews.models import Decision

        # Every decision is bound to the audit event that recorded it: `verify_audit` names one that was altered,
        # deleted, or added without an event.
        events.register_binding(
            events.Binding(
                name="decision",
                payload_key=DECISION_ID_KEY,
                digest_key=DECISION_DIGEST_KEY,
                rows=Decision.objects.bound_contents,
            )
        )
        # A case's representation in the API carries its human decisions, oldest first.
        CASE_FIELDS.register(
            ExtraField(
                name="decisions",
                make=lambda: CaseDecisionSerializer(many=True, read_only=True),
                prefetch=lambda: Prefetch("decisions", queryset=Decision.objects.select_related("actor")),
            )
        )
        # Notifications about a queue (an SLA warning, cases moved in) link to its work list.
        register_queue_work_page(work_list_url)
