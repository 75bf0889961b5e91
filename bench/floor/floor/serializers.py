"""The floor's one serializer: the field rules of `POST /api/v1/cases/` (cases/api/serializers.py,
CaseIntakeSerializer, for a case sent with its own output) in a plain ModelSerializer."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from floor.models import FloorCase


class NumberField(serializers.FloatField):
    """A JSON number: no strings or booleans (the project's StrictFloatField)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError("Must be a JSON number.")
        return super().to_internal_value(data)


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"Must be a JSON object, not {type(value).__name__}.")
    return value


class FloorCaseSerializer(serializers.ModelSerializer[FloorCase]):
    confidence = NumberField(min_value=0.0, max_value=1.0)
    model_version = serializers.CharField(max_length=201)
    rules_fired = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=100
    )
    value = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)

    class Meta:
        model = FloorCase
        fields = [
            "id",
            "category",
            "external_id",
            "input",
            "output",
            "confidence",
            "model_version",
            "rules_fired",
            "value",
            "segment",
            "priority",
            "customer_ref",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        # No UniqueTogetherValidator: it would run one SELECT per item (500 in a bulk request). The floor inserts
        # and lets the unique constraint refuse a repeat, as the project's lean intake does.
        validators: list[Any] = []

    def validate_input(self, value: Any) -> dict[str, Any]:
        return json_object(value)

    def validate_segment(self, value: Any) -> dict[str, Any]:
        return json_object(value)

    def validate_model_version(self, label: str) -> str:
        # name@version, each part non-blank and at most 100 characters (governance.services.parse_model_label).
        name, sep, version = label.partition("@")
        if not sep or not name.strip() or not version.strip() or "@" in version:
            raise serializers.ValidationError(f"{label!r} is not of the form 'name@version'.")
        if len(name) > 100 or len(version) > 100:
            raise serializers.ValidationError("Name and version may each have at most 100 characters.")
        return label

    def validate_output(self, value: Any) -> dict[str, Any]:
        output = json_object(value)
        label = output.get("label")
        if not isinstance(label, str) or not label.strip():
            raise serializers.ValidationError("Must have a non-empty string `label`.")
        return output
