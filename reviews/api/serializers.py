from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cases.selectors import is_blind
from governance.api.fields import JSONObjectField
from reviews.choices import Action, ReasonCode
from reviews.models import Decision


class CaseDecisionSerializer(serializers.ModelSerializer[Decision]):
    """A human decision as the case's `decisions` show it (registered into the case's representation by
    `reviews.apps`). While the case is blind (an escalated shadow case), the outputs it saw stay hidden too."""

    actor = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "action",
            "actor",
            "reason_code",
            "notes",
            "output_before",
            "output_after",
            "seconds_spent",
            "batch_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_actor(self, decision: Decision) -> str:
        return decision.actor.get_username() if decision.actor else "system"

    def to_representation(self, instance: Decision) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if is_blind(instance.case):
            data["output_before"] = data["output_after"] = None
        return data


class DecideSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=Action.choices)
    output = JSONObjectField(required=False, help_text="Your output (with `label`): to correct, to flag, or in shadow.")
    reason_code = serializers.ChoiceField(choices=ReasonCode.choices, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    seconds_spent = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86400)


class ReassignSerializer(serializers.Serializer[Any]):
    queue = serializers.SlugField(required=False, help_text="The slug of the queue to move the case to.")
    assignee = serializers.CharField(required=False, help_text="The username of the person to hand the case to.")
    reason = serializers.CharField(max_length=1000)


class BatchApproveSerializer(serializers.Serializer[Any]):
    # The policy's batch_max (at most governance's MAX_BATCH_MAX) is the real cap; the service refuses past it.
    cases = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=500)
    seconds_spent = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class BatchSkipSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BatchResultSerializer(serializers.Serializer[Any]):
    batch_id = serializers.UUIDField()
    approved = serializers.ListField(child=serializers.IntegerField())
    skipped = BatchSkipSerializer(many=True)
    median_seconds_per_case = serializers.FloatField(
        allow_null=True, help_text="The batch's seconds shared by the cases approved, their median; null untimed."
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "batch_id": str(instance.batch_id),
            "approved": instance.approved,
            "skipped": [{"id": case_id, "reason": reason} for case_id, reason in instance.skipped],
            "median_seconds_per_case": instance.median_seconds_per_case,
        }
