from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.db.models import prefetch_related_objects
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.exceptions import APIException

from cases.choices import Priority
from cases.models import Case, Queue
from cases.permissions import shown_input
from cases.selectors import is_blind
from cases.services.intake import IntakeItem, not_submittable_message, submittable_categories
from cases.services.prediction import BuiltinVersions, PredictionUnavailable, builtin_versions, check_predictable
from governance.api.fields import ExtraField, ExtraFields, JSONObjectField
from governance.api.serializers import StrictFloatField
from governance.models import AuditEvent, Category
from governance.services import parse_model_label

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def looks_like_slug(value: object) -> TypeGuard[str]:
    """A well-formed slug: one that names a category or not. Anything else is a 400 from the serializer."""
    return isinstance(value, str) and len(value) <= 64 and slug_re.fullmatch(value) is not None


class PredictionUnavailableError(APIException):
    """503: the category's built-in model should answer the case but its artifact was refused (changed after
    training, or holding untrusted types). Nothing is stored; the client may send its own prediction instead."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "prediction_unavailable"


class CaseIntakeSerializer(serializers.Serializer[Any]):
    """One submitted model output. Checks every field; the category lookup is the only database read, and for a
    case sent without `output` and `confidence`, the lookup of the category's built-in model."""

    category = serializers.SlugField(max_length=64)
    external_id = serializers.CharField(max_length=200)
    input = JSONObjectField()
    output = JSONObjectField(
        required=False,
        help_text="The model's output: `label` (required), optional `text`, `reasoning`, `score`. Omit it together "
        "with `confidence` when the category's active model is the built-in one: intake predicts.",
    )
    confidence = StrictFloatField(min_value=0.0, max_value=1.0, required=False)
    model_version = serializers.CharField(
        max_length=201,
        required=False,
        default="",
        help_text="name@version; required with `output`, optional (the built-in model's) without.",
    )
    rules_fired = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=100
    )
    value = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)
    segment = JSONObjectField(required=False, default=dict, help_text='e.g. {"channel": "email", "tier": "gold"}')
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    customer_ref = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_category(self, slug: str) -> Category:
        # The view passes in the categories this user may submit to (cases.services.submittable_categories).
        category: Category | None = self.context.get("categories", {}).get(slug)
        if category is None:
            raise serializers.ValidationError(not_submittable_message(slug))
        return category

    def validate_output(self, output: dict[str, Any]) -> dict[str, Any]:
        label = output.get("label")
        if not isinstance(label, str) or not label.strip():
            raise serializers.ValidationError("Must have a non-empty string `label`.")
        return output

    def validate_model_version(self, label: str) -> str:
        if not label:
            return label  # whether it may be left out depends on `output` (see validate)
        try:
            parse_model_label(label)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["model_version"]) from exc
        return label

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        answered = [name for name in ("output", "confidence") if name in attrs]
        if len(answered) == 1:
            missing = "confidence" if answered == ["output"] else "output"
            raise serializers.ValidationError(
                {
                    missing: [
                        "Required with `" + answered[0] + "`: send the model's output and confidence together, or "
                        "neither to let the category's built-in model predict."
                    ]
                }
            )
        if answered:
            if not attrs.get("model_version"):
                raise serializers.ValidationError({"model_version": ["This field is required with `output`."]})
            return attrs
        # Cached in the context, which a bulk submission shares across its items: one lookup per category.
        context = cast("dict[str, Any]", self.context)
        known: dict[int, BuiltinVersions] = context.setdefault("builtin_versions", {})
        category: Category = attrs["category"]
        if category.pk not in known:
            known[category.pk] = builtin_versions(category)
        try:
            check_predictable(category=category, versions=known[category.pk], model_version=attrs["model_version"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        except PredictionUnavailable as exc:
            raise PredictionUnavailableError(
                {
                    "output": [
                        f"The category's built-in model cannot predict: {exc} Send the case with its own `output`, "
                        "`confidence` and `model_version`, or ask a model steward to retrain or roll back."
                    ]
                }
            ) from exc
        return attrs

    def to_item(self) -> IntakeItem:
        return self.item_from(self.validated_data)

    @staticmethod
    def item_from(attrs: dict[str, Any]) -> IntakeItem:
        """The intake item of one item's validated fields."""
        return IntakeItem(**{"output": None, "confidence": None, **attrs})


# The read-only fields the layers above add to a case (reviews: its decisions), registered from their `ready()`.
CASE_FIELDS = ExtraFields()


class CaseSerializer(serializers.ModelSerializer[Case]):
    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue: serializers.SlugRelatedField[Queue] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    model_version = serializers.CharField(source="model_version.label", read_only=True)
    model_version_status = serializers.CharField(source="model_version.status", read_only=True)
    claimed_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

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
        # A claim that has run out holds nothing: it reads as free here as everywhere (`Case.holder_id_at`).
        now = timezone.now()
        if instance.holder_id_at(now) is None:
            data["claimed_by"] = data["claimed_until"] = None
        data["status"] = instance.status_at(now)
        data["output_hidden"] = is_blind(instance)
        if data["output_hidden"]:
            # Blind review: nobody sees the model's answer before a person has given theirs.
            data["output"] = None
        return data

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields: dict[str, serializers.Field[Any, Any, Any, Any]] = super().get_fields()
        fields.update(CASE_FIELDS.made())
        return fields


class BulkIntakeSerializer(serializers.Serializer[Any]):
    """The envelope of a bulk submission: `{"cases": [...]}`, or the bare list (see `bulk_envelope`)."""

    cases = serializers.ListField(
        child=serializers.JSONField(),
        max_length=settings.HITL_MAX_BULK_ITEMS,
        error_messages={
            kind: "Send a JSON list of cases, or an object with a `cases` list."
            for kind in ("not_a_list", "null", "required")
        },
    )

    def validate_cases(self, raw: list[Any]) -> list[Any]:
        if not raw:
            raise serializers.ValidationError("The list is empty: send at least one case.")
        return raw

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # A bare list is the envelope's `cases`; anything else that is not an object lacks `cases`.
        if isinstance(data, list):
            data = {"cases": data}
        elif not isinstance(data, dict):
            data = {}
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> Any:
        cases = data.get("cases") if isinstance(data, dict) else None
        if isinstance(cases, list) and len(cases) > settings.HITL_MAX_BULK_ITEMS:
            limit = settings.HITL_MAX_BULK_ITEMS
            raise serializers.ValidationError(
                {"cases": [f"At most {limit} cases per request; got {len(cases)}. Split it."]}
            )
        return super().to_internal_value(data)


@dataclass
class BulkIntake:
    """A bulk submission read item by item: the valid ones as intake items, each other one with its errors.

    Every item is checked on its own (shape, fields, the user's grant on its category), so one bad item never
    stops the others."""

    size: int
    items: list[tuple[int, IntakeItem]] = field(default_factory=list)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: list[Any], *, user: User) -> BulkIntake:
        bulk = cls(size=len(raw))
        slugs = [data.get("category") for data in raw if isinstance(data, dict)]
        context = {"categories": submittable_categories(user=user, slugs=slugs)}
        # One serializer validates every item, as DRF's ListSerializer reuses its child: its fields are built once,
        # not 500 times. (A `many=True` serializer would do the same, but it drops every item's validated data
        # when any one item is invalid, and here the valid ones go in regardless.)
        intake = CaseIntakeSerializer(context=context)
        for index, data in enumerate(raw):
            if not isinstance(data, dict):
                bulk.errors[index] = {"non_field_errors": ["Each case must be a JSON object."]}
                continue
            slug = data.get("category")
            if looks_like_slug(slug) and slug not in context["categories"]:
                # Only the grant is reported: an item for a category one may not submit to is not inspected.
                bulk.errors[index] = {"category": [not_submittable_message(slug)]}
                continue
            try:
                attrs = intake.run_validation(data)
            except (serializers.ValidationError, PredictionUnavailableError) as exc:
                # One item's refusal (a 503 of the built-in model among them) is that item's result: the rest of
                # the bulk still goes in.
                bulk.errors[index] = dict(exc.detail)  # type: ignore[arg-type]
                continue
            bulk.items.append((index, intake.item_from(attrs)))
        return bulk

    def results(self, stored: list[tuple[Case, bool]], *, context: dict[str, Any]) -> dict[str, Any]:
        """The response: one result per item, in the order sent, with counts of each kind; the stored cases are
        read whole in one query per registered section."""
        cases = [case for case, _ in stored]
        # A case created just now has no decisions yet: only the repeats' sections are read.
        for case, created in stored:
            if created:
                CASE_FIELDS.mark_empty(case)
        prefetch_related_objects([case for case, created in stored if not created], *CASE_FIELDS.prefetches())
        serialized = CaseSerializer(cases, many=True, context=context).data
        results: list[dict[str, Any]] = [
            {"index": i, "result": "invalid", "errors": self.errors[i]} if i in self.errors else {"index": i}
            for i in range(self.size)
        ]
        for (index, _), (case, created), data in zip(self.items, stored, serialized, strict=True):
            results[index].update(result="created" if created else "existing", id=case.pk, case=data)
        counts = {name: sum(1 for r in results if r["result"] == name) for name in ("created", "existing", "invalid")}
        return {**counts, "results": results}


class BulkResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    result = serializers.ChoiceField(choices=["created", "existing", "invalid"])
    id = serializers.IntegerField(required=False)
    case = CaseSerializer(required=False)
    # A declared field, which DRF's metaclass takes out of the class: it never shadows `Serializer.errors`.
    errors = serializers.DictField(required=False)  # type: ignore[assignment]


class BulkResponseSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    invalid = serializers.IntegerField()
    results = BulkResultSerializer(many=True)


class QueueSerializer(serializers.ModelSerializer[Queue]):
    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    next_queue: serializers.SlugRelatedField[Queue] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
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
CATEGORY_QUEUES = ExtraField(
    name="queues",
    make=lambda: serializers.SlugRelatedField(many=True, read_only=True, slug_field="slug"),
    prefetch=lambda: "queues",
)
