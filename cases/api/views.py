"""Case intake and reading, queues, and the audit trail of what you may see.

Thin: serializers validate, `cases.services.intake` writes, `visible_to(user)` narrows every queryset before lookup
(an object you may not see is a 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from cases.api.serializers import (
    CASE_FIELDS,
    AuditEventSerializer,
    BulkIntake,
    BulkIntakeSerializer,
    BulkResponseSerializer,
    CaseIntakeSerializer,
    CaseSerializer,
    QueueSerializer,
    looks_like_slug,
)
from cases.filtersets import CaseFilterSet, QueueFilterSet
from cases.models import Case, Queue
from cases.selectors import queue_stats
from cases.services.intake import not_submittable_message, submit_cases, submittable_categories
from governance.api.plumbing import SeqCursorPagination, VisibleToUserMixin, acting_user, error_responses
from governance.filtersets import AuditEventFilterSet
from governance.models import AuditEvent


class CaseViewSet(
    VisibleToUserMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Case],
):
    """Submit model outputs and read the cases you may see (your queues, or categories granted to you)."""

    queryset = Case.objects.select_related("category", "queue", "model_version", "claimed_by")
    serializer_class = CaseSerializer
    filterset_class = CaseFilterSet

    def get_queryset(self) -> QuerySet[Case]:
        # The sections higher layers registered (a case's decisions) are read once per page.
        return super().get_queryset().prefetch_related(*CASE_FIELDS.prefetches())

    @extend_schema(
        request=CaseIntakeSerializer,
        responses={
            201: OpenApiResponse(CaseSerializer, description="Created and routed."),
            200: OpenApiResponse(CaseSerializer, description="A repeat of category + external_id: the existing case."),
            **error_responses(400, 401, 403, 413, 503),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Submit one case; a repeat of the same category + external_id returns the existing case (200). In a
        category whose active model is the built-in one, `output` and `confidence` may be left out: intake predicts
        (503 if the model's artifact is refused)."""
        user = acting_user(request)
        slug = request.data.get("category") if isinstance(request.data, dict) else None
        categories = submittable_categories(user=user, slugs=[slug])
        if looks_like_slug(slug) and slug not in categories:
            raise PermissionDenied(not_submittable_message(slug))
        intake = CaseIntakeSerializer(data=request.data, context={"categories": categories})
        intake.is_valid(raise_exception=True)
        # The category was read with its policy for this request (submittable_categories): intake reuses it.
        case, created = submit_cases(user=user, items=[intake.to_item()], categories_fresh=True)[0]
        if created:
            CASE_FIELDS.mark_empty(case)
        data = CaseSerializer(case, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request=BulkIntakeSerializer,
        responses={200: BulkResponseSerializer, **error_responses(400, 401, 413)},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """Submit up to HITL_MAX_BULK_ITEMS (500) cases as `{"cases": [...]}` (or a bare list). One result per
        item, in order; the valid ones are stored even if others are invalid."""
        user = acting_user(request)
        envelope = BulkIntakeSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        bulk = BulkIntake.read(envelope.validated_data["cases"], user=user)
        stored = submit_cases(user=user, items=[item for _, item in bulk.items], categories_fresh=True)
        return Response(bulk.results(stored, context={"request": request}))

    @extend_schema(responses={200: CaseSerializer, **error_responses(401, 404)})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(responses={200: CaseSerializer(many=True), **error_responses(400, 401)})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class QueueViewSet(
    VisibleToUserMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Queue]
):
    """Queues you may see, with depth, oldest age, overdue and near-breach counts."""

    queryset = Queue.objects.select_related("category", "next_queue")
    serializer_class = QueueSerializer
    filterset_class = QueueFilterSet
    lookup_field = "slug"
    pagination_class = None

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        now = timezone.now()
        queues = self.filter_queryset(self.get_queryset())
        if self.action == "retrieve":
            queues = queues.filter(slug=self.kwargs.get("slug"))
        context.update(now=now, stats=queue_stats(list(queues), now))
        return context

    @extend_schema(responses={200: QueueSerializer(many=True), **error_responses(400, 401)})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class AuditEventViewSet(VisibleToUserMixin, mixins.ListModelMixin, viewsets.GenericViewSet[AuditEvent]):
    """The audit trail of what you may see: events of visible cases, and category-level events of visible
    categories. `?case=<id>` gives one case's story; `?category=<slug>` one category's."""

    queryset = AuditEvent.objects.order_by("id")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = SeqCursorPagination

    @extend_schema(responses={200: AuditEventSerializer(many=True), **error_responses(400, 401)})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
