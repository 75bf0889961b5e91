"""Case intake and reading, queues, and the audit trail of what you may see.

Thin: serializers validate, `cases.services` writes, `visible_to(user)` narrows every queryset before lookup
(an object you may not see is a 404)."""

from __future__ import annotations

from typing import Any, TypeGuard

from django.apps import apps
from django.conf import settings
from django.core.validators import slug_re
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cases.api.serializers import (
    AuditEventSerializer,
    BulkIntakeSerializer,
    BulkResponseSerializer,
    CaseIntakeSerializer,
    CaseSerializer,
    QueueSerializer,
)
from cases.filtersets import CaseFilterSet
from cases.models import Case, Queue
from cases.selectors import queue_stats
from cases.services import IntakeItem, not_submittable_message, submit_cases, submittable_categories
from governance.api.plumbing import SeqCursorPagination, acting_user, error_responses
from governance.models import AuditEvent


def _looks_like_slug(value: object) -> TypeGuard[str]:
    """A well-formed slug: one that names a category or not. Anything else is a 400 from the serializer."""
    return isinstance(value, str) and len(value) <= 64 and slug_re.fullmatch(value) is not None


class CaseViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet[Case]
):
    """Submit model outputs and read the cases you may see (your queues, or categories granted to you)."""

    serializer_class = CaseSerializer
    filterset_class = CaseFilterSet

    def get_queryset(self) -> QuerySet[Case]:
        return (
            Case.objects.visible_to(self.request.user)
            .select_related("category", "queue", "model_version", "claimed_by")
            .prefetch_related(Prefetch("decisions", queryset=self._decisions()))
        )

    @staticmethod
    def _decisions() -> QuerySet[Any]:
        # Looked up by name: the reviews layer sits above cases, which never imports it.
        return apps.get_model("reviews", "Decision").objects.select_related("actor")

    @extend_schema(
        request=CaseIntakeSerializer,
        responses={
            201: OpenApiResponse(CaseSerializer, description="Created and routed."),
            200: OpenApiResponse(CaseSerializer, description="A repeat of category + external_id: the existing case."),
            **error_responses(400, 401, 403, 413),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Submit one case; a repeat of the same category + external_id returns the existing case (200)."""
        user = acting_user(request)
        slug = request.data.get("category") if isinstance(request.data, dict) else None
        categories = submittable_categories(user=user, slugs=[slug])
        if _looks_like_slug(slug) and slug not in categories:
            raise PermissionDenied(not_submittable_message(slug))
        intake = CaseIntakeSerializer(data=request.data, context={"categories": categories})
        intake.is_valid(raise_exception=True)
        case, created = submit_cases(user=user, items=[intake.to_item()])[0]
        if created:
            # A case created a moment ago has no decisions yet: answer without asking the database.
            case._prefetched_objects_cache = {"decisions": self._decisions().none()}  # type: ignore[attr-defined]
        data = CaseSerializer(case, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=BulkIntakeSerializer,
        responses={200: BulkResponseSerializer, **error_responses(400, 401, 413)},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """Submit up to 500 cases as `{"cases": [...]}` (or a bare list). One result per item, in order; the
        valid ones are stored even if others are invalid."""
        raw = request.data.get("cases") if isinstance(request.data, dict) else request.data
        if not isinstance(raw, list):
            raise ValidationError({"cases": ["Send a JSON list of cases, or an object with a `cases` list."]})
        if not raw:
            raise ValidationError({"cases": ["The list is empty: send at least one case."]})
        if len(raw) > settings.HITL_MAX_BULK_ITEMS:
            raise ValidationError(
                {"cases": [f"At most {settings.HITL_MAX_BULK_ITEMS} cases per request; got {len(raw)}. Split it."]}
            )
        user = acting_user(request)
        results: list[dict[str, Any]] = [{"index": i} for i in range(len(raw))]
        valid: list[tuple[int, IntakeItem]] = []
        categories = submittable_categories(
            user=user, slugs=[data.get("category") for data in raw if isinstance(data, dict)]
        )
        context = {"categories": categories}
        for index, data in enumerate(raw):
            if not isinstance(data, dict):
                results[index].update(
                    result="invalid", errors={"non_field_errors": ["Each case must be a JSON object."]}
                )
                continue
            slug = data.get("category")
            if _looks_like_slug(slug) and slug not in categories:
                results[index].update(result="invalid", errors={"category": [not_submittable_message(slug)]})
                continue
            intake = CaseIntakeSerializer(data=data, context=context)
            if intake.is_valid():
                valid.append((index, intake.to_item()))
            else:
                results[index].update(result="invalid", errors=intake.errors)
        stored = submit_cases(user=user, items=[item for _, item in valid])
        cases = [case for case, _ in stored]
        prefetch_related_objects(cases, Prefetch("decisions", queryset=self._decisions()))
        serialized = CaseSerializer(cases, many=True, context={"request": request}).data
        for (index, _), (case, created), data in zip(valid, stored, serialized, strict=True):
            results[index].update(result="created" if created else "existing", id=case.pk, case=data)
        counts = {name: sum(1 for r in results if r["result"] == name) for name in ("created", "existing", "invalid")}
        return Response({**counts, "results": results})

    @extend_schema(responses={200: CaseSerializer, **error_responses(401, 404)})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(responses={200: CaseSerializer(many=True), **error_responses(400, 401)})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class QueueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Queue]):
    """Queues you may see, with depth, oldest age, overdue and near-breach counts."""

    serializer_class = QueueSerializer
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self) -> QuerySet[Queue]:
        queryset = Queue.objects.visible_to(self.request.user).select_related("category", "next_queue")
        category = self.request.query_params.get("category")
        return queryset.filter(category__slug=category) if category else queryset

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        now = timezone.now()
        if self.action == "retrieve":
            queues = list(self.get_queryset().filter(slug=self.kwargs.get("slug")))
        else:
            queues = list(self.get_queryset())
        context.update(now=now, stats=queue_stats(queues, now))
        return context

    @extend_schema(
        parameters=[OpenApiParameter("category", str, description="Only this category's queues (slug).")],
        responses={200: QueueSerializer(many=True), **error_responses(401)},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[AuditEvent]):
    """The audit trail of what you may see: events of visible cases, and category-level events of visible
    categories. `?case=<id>` gives one case's story; `?category=<slug>` one category's."""

    serializer_class = AuditEventSerializer

    pagination_class = SeqCursorPagination

    def get_queryset(self) -> QuerySet[AuditEvent]:
        queryset = AuditEvent.objects.visible_to(self.request.user)
        params = self.request.query_params
        if "case" in params:
            try:
                queryset = queryset.filter(case_id=int(params["case"]))
            except ValueError as exc:
                raise ValidationError({"case": ["Must be a case id (an integer)."]}) from exc
        if "category" in params:
            queryset = queryset.filter(category_slug=params["category"])
        if "kind" in params:
            queryset = queryset.filter(kind=params["kind"])
        return queryset.order_by("id")

    @extend_schema(
        parameters=[
            OpenApiParameter("case", int, description="Only this case's events."),
            OpenApiParameter("category", str, description="Only this category's events (slug)."),
            OpenApiParameter("kind", str, description="Only events of this kind, e.g. case.routed."),
        ],
        responses={200: AuditEventSerializer(many=True), **error_responses(400, 401)},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
