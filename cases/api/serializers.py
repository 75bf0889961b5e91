from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cases.choices import Priority
from cases.models import Case, Queue
from cases.permissions import shown_input
from cases.selectors import is_blind
from cases.services import IntakeItem, not_submittable_message
from governance.api.fields import JSONObjectField
from governance.api.serializers import CategoryField, StrictFloatField
from governance.models import AuditEvent, Category


class CaseIntakeSerializer(serializers.Serializer):
    """One submitted model output. Checks every field; the category lookup is the only database read."""

    category = serializers.SlugField(max_length=64)
    external_id = serializers.CharField(max_length=200)
    input = JSONObjectField()
    output = JSONObjectField(help_text="The model's output: `label` (required), optional `text`, `reasoning`, `score`.")
    confidence = StrictFloatField(min_value=0.0, max_value=1.0)
    model_version = serializers.CharField(max_length=201, help_text="name@version")
    rules_fired = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=100
    )
    value = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)
    segment = JSONObjectField(required=False, default=dict, help_text='e.g. {"channel": "email", "tier": "gold"}')
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    customer_ref = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_category(self, slug: str) -> Category:
        # The view passes in the categories this user may submit to (cases.services.submittable_categories).
        category = self.context.get("categories", {}).get(slug)
        if category is None:
            raise serializers.ValidationError(not_submittable_message(slug))
        return category

    def validate_output(self, output: dict[str, Any]) -> dict[str, Any]:
        label = output.get("label")
        if not isinstance(label, str) or not label.strip():
            raise serializers.ValidationError("Must have a non-empty string `label`.")
        return output

    def validate_model_version(self, label: str) -> str:
        name, sep, version = label.partition("@")
        if not sep or not name.strip() or not version.strip() or "@" in version:
            raise serializers.ValidationError(f"{label!r} is not of the form 'name@version'.")
        return label

    def to_item(self) -> IntakeItem:
        return IntakeItem(**self.validated_data)


class CaseSerializer(serializers.ModelSerializer[Case]):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    model_version = serializers.CharField(source="model_version.label", read_only=True)
    model_version_status = serializers.CharField(source="model_version.status", read_only=True)
    claimed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    decisions = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "category",
            "external_id",
            "status",
            "route",
            "route_reasons",
            "queue",
            "due_at",
            "audit_sampled",
            "policy_version",
            "final_output",
            "input",
            "output",
            "confidence",
            "model_version",
            "model_version_status",
            "rules_fired",
            "value",
            "segment",
            "priority",
            "customer_ref",
            "claimed_by",
            "claimed_until",
            "created_at",
            "decided_at",
            "decisions",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "input": {
                "help_text": "As submitted for users with `cases.view_pii`; for everyone else the redacted view "
                "(the category's PII fields and detected e-mail addresses, phones, cards and IBANs replaced)."
            }
        }

    def to_representation(self, instance: Case) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        # Personal data only for users with `cases.view_pii`; without a request in the context, nobody's.
        request = self.context.get("request")
        user = getattr(request, "user", None)
        data["input"] = shown_input(instance.input, pii_fields=instance.category.pii_fields, user=user)
        data["output_hidden"] = is_blind(instance)
        if data["output_hidden"]:
            # Blind review: nobody sees the model's answer before a person has given theirs.
            data["output"] = None
        return data

    def get_decisions(self, case: Case) -> list[dict[str, Any]]:
        """The human decisions on the case, oldest first (read through the reverse relation: reviews sits above).
        While the case is blind (an escalated shadow case), the outputs they saw stay hidden too."""
        blind = is_blind(case)
        return [
            {
                "id": d.pk,
                "action": d.action,
                "actor": d.actor.get_username() if d.actor else "system",
                "reason_code": d.reason_code,
                "notes": d.notes,
                "output_before": None if blind else d.output_before,
                "output_after": None if blind else d.output_after,
                "seconds_spent": d.seconds_spent,
                "batch_id": str(d.batch_id) if d.batch_id else None,
                "created_at": d.created_at.isoformat(),
            }
            for d in case.decisions.all()  # type: ignore[attr-defined]
        ]


class BulkIntakeSerializer(serializers.Serializer):
    cases = serializers.ListField(child=serializers.JSONField(), min_length=1, max_length=500)


class BulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["created", "existing", "invalid"])
    id = serializers.IntegerField(required=False)
    case = CaseSerializer(required=False)
    errors = serializers.DictField(required=False)


class BulkResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    invalid = serializers.IntegerField()
    results = BulkResultSerializer(many=True)


class QueueSerializer(serializers.ModelSerializer[Queue]):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    next_queue = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    sla_seconds = serializers.SerializerMethodField()
    depth = serializers.SerializerMethodField()
    oldest_age_seconds = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    near_breach = serializers.SerializerMethodField()

    class Meta:
        model = Queue
        fields = [
            "id",
            "slug",
            "name",
            "category",
            "kind",
            "sla",
            "sla_seconds",
            "next_queue",
            "allow_batch",
            "depth",
            "oldest_age_seconds",
            "overdue",
            "near_breach",
        ]

    def _stats(self, queue: Queue) -> Any:
        return self.context["stats"][queue.pk]

    def get_sla_seconds(self, queue: Queue) -> int:
        return int(queue.sla.total_seconds())

    def get_depth(self, queue: Queue) -> int:
        return int(self._stats(queue).depth)

    def get_oldest_age_seconds(self, queue: Queue) -> int | None:
        oldest = self._stats(queue).oldest_created_at
        return None if oldest is None else int((self.context["now"] - oldest).total_seconds())

    def get_overdue(self, queue: Queue) -> int:
        return int(self._stats(queue).overdue)

    def get_near_breach(self, queue: Queue) -> int:
        return int(self._stats(queue).near_breach)


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "created_at",
            "kind",
            "actor_username",
            "category_slug",
            "case_id",
            "payload",
            "prev_hash",
            "hash",
        ]


# The slugs of a category's queues, in the categories API (registered from CasesConfig.ready()).
CATEGORY_QUEUES = CategoryField(
    name="queues",
    make=lambda: serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug"),
    prefetch="queues",
)
