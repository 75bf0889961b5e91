from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from governance.api.fields import ExtraFields, StorableModelSerializer, StorableSlugRelatedField
from governance.api.plumbing import django_errors_as_drf
from governance.choices import Consequence, ModelStatus, Pattern, Stage
from governance.models import Category, ModelVersion, Policy
from governance.models.categories import MAX_RETRAIN_EVERY_DAYS
from governance.services import POLICY_FIELDS

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class StrictFloatField(serializers.FloatField):
    """A JSON number: no strings, no booleans, no NaN or infinity."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError("Must be a JSON number.")
        return super().to_internal_value(data)


class PolicySerializer(StorableModelSerializer):
    auto_threshold = StrictFloatField(required=False, min_value=0, max_value=1)
    review_threshold = StrictFloatField(required=False, min_value=0, max_value=1)
    auto_share = StrictFloatField(required=False, min_value=0, max_value=100)
    audit_rate = StrictFloatField(required=False, min_value=0, max_value=1)
    double_review_rate = StrictFloatField(required=False, min_value=0, max_value=1)
    pause_rejection_rate = StrictFloatField(required=False, min_value=0, max_value=1)
    sensitive_labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    sensitive_rules = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    class Meta:
        model = Policy
        fields = ["version", *POLICY_FIELDS, "updated_at"]
        read_only_fields = ["version", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The model's own rules (0 <= review < auto <= 1, multipliers...) on the policy as it would become."""
        current = {name: getattr(self.instance, name) for name in POLICY_FIELDS} if self.instance else {}
        candidate = Policy(**{**current, **{k: v for k, v in attrs.items() if k in POLICY_FIELDS}})
        try:
            candidate.full_clean(exclude=["category"])
        except DjangoValidationError as exc:
            raise django_errors_as_drf(exc) from exc
        return attrs


class CategoryPolicySerializer(PolicySerializer):
    """A policy as its own resource (/categories/{slug}/policy/): its fields plus the category it belongs to."""

    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta(PolicySerializer.Meta):
        fields = ["category", *PolicySerializer.Meta.fields]


class PolicyChangeSerializer(PolicySerializer):
    """A new policy version: the fields to change plus the reason for the change."""

    reason = serializers.CharField(max_length=1000, write_only=True)

    class Meta(PolicySerializer.Meta):
        fields = [*PolicySerializer.Meta.fields, "reason"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH is partial, but the reason never is.
        if not attrs.get("reason", "").strip():
            raise serializers.ValidationError({"reason": ["A reason is required: say why, for the audit trail."]})
        return super().validate(attrs)


# The read-only fields the layers above add to a category (cases: its queues), registered from their `ready()`.
CATEGORY_FIELDS = ExtraFields()


class CategorySerializer(StorableModelSerializer):
    policy = PolicySerializer(required=False)
    create_default_queues = serializers.BooleanField(default=True, write_only=True)
    pattern = serializers.ChoiceField(choices=Pattern.choices, default=Pattern.EXCEPTION)
    stage = serializers.ChoiceField(choices=Stage.choices, default=Stage.LIVE)
    consequence = serializers.ChoiceField(choices=Consequence.choices, default=Consequence.MEDIUM)

    class Meta:
        model = Category
        fields = [
            "slug",
            "name",
            "description",
            "pattern",
            "stage",
            "consequence",
            "paused",
            "paused_at",
            "paused_reason",
            "resumed_at",
            "pii_fields",
            "retention_days",
            "retrain_every_days",
            "baseline_minutes_per_case",
            "policy",
            "create_default_queues",
            "created_at",
        ]
        read_only_fields = ["paused", "paused_at", "paused_reason", "resumed_at", "created_at"]

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields: dict[str, serializers.Field[Any, Any, Any, Any]] = {}
        for name, field in super().get_fields().items():
            fields[name] = field
            if name == "policy":  # the registered fields follow the policy, as what hangs off the category
                fields.update(CATEGORY_FIELDS.made())
        return fields

    def validate_pii_fields(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise serializers.ValidationError("Must be a list of input field names.")
        return value


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=1000)


class RetrainCadenceSerializer(ReasonSerializer):
    """How often the category's built-in model is retrained, in days (0: not on a cadence), and why it changes."""

    retrain_every_days = serializers.IntegerField(min_value=0, max_value=MAX_RETRAIN_EVERY_DAYS)


class ModelVersionSerializer(StorableModelSerializer):
    category = StorableSlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    status = serializers.ChoiceField(choices=ModelStatus.choices, default=ModelStatus.REGISTERED)
    reason = serializers.CharField(max_length=1000, write_only=True, required=False, allow_blank=True)
    # A declared field, which DRF's metaclass takes out of the class: it never shadows `Field.label`.
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]
    approved_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "category",
            "name",
            "version",
            "label",
            "status",
            "approved_by",
            "approved_at",
            "notes",
            "metrics",
            "reason",
            "created_at",
        ]
        read_only_fields = ["approved_at", "created_at"]
        # Uniqueness is the service's to judge (a 409 Conflict), not a 400 from the serializer.
        validators: list[Any] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Only categories the user can see may be named; others read as unknown.
            # `fields` holds plain Fields to the stubs (this one is the SlugRelatedField declared above), and a
            # cast to it would not do: the stubs' `queryset: QuerySet | Manager` reads a Manager as a descriptor.
            self.fields["category"].queryset = Category.objects.visible_to(request.user)  # type: ignore[attr-defined]

    def validate_metrics(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object of metric name -> value.")
        return value


class PromoteSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=ModelStatus.choices)
    reason = serializers.CharField(max_length=1000)
