"""The human side over the API: claim, release, decide, reassign, claim-next and batch approval.

These routes live under /cases/ and /queues/ beside the cases app's own; they call reviews.services, the same
functions the admin calls. Visibility first: a case or queue the user may not see is a 404."""

from __future__ import annotations

from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.api.serializers import CaseSerializer
from cases.models import Case, Queue
from governance.api.plumbing import VisibleToUserMixin, acting_user, error_responses
from governance.models import Category
from reviews import export, services
from reviews.api.serializers import BatchApproveSerializer, BatchResultSerializer, DecideSerializer, ReassignSerializer


def _case_response(case: Case, request: Request) -> Response:
    fresh = Case.objects.select_related("category", "queue", "model_version", "claimed_by").get(pk=case.pk)
    return Response(CaseSerializer(fresh, context={"request": request}).data)


class CaseWorkViewSet(VisibleToUserMixin, viewsets.GenericViewSet[Case]):
    """Work one case: claim it, release it, decide it, or (escalation managers) reassign it."""

    queryset = Case.objects.all()
    serializer_class = CaseSerializer

    @extend_schema(request=None, responses={200: CaseSerializer, **error_responses(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        """Hold the case for yourself for the claim duration (15 minutes by default)."""
        return _case_response(services.claim(case=self.get_object(), user=acting_user(request)), request)

    @extend_schema(request=None, responses={200: CaseSerializer, **error_responses(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Give a case you hold back to its queue."""
        return _case_response(services.release(case=self.get_object(), user=acting_user(request)), request)

    @extend_schema(
        request=DecideSerializer, responses={200: CaseSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """approve | correct (with `output`) | reject (with `reason_code`) | escalate (with `reason_code`);
        confirm | flag for a case in an audit queue."""
        case = self.get_object()
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.decide(case=case, user=acting_user(request), **serializer.validated_data)
        return _case_response(case, request)

    @extend_schema(
        request=ReassignSerializer, responses={200: CaseSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request: Request, pk: str | None = None) -> Response:
        """Move a waiting case to another queue of its category and/or hand it to a person (escalation managers)."""
        case = self.get_object()
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.reassign(
            case=case,
            user=acting_user(request),
            reason=data["reason"],
            queue=data.get("queue"),
            assignee=data.get("assignee"),
        )
        return _case_response(case, request)


class QueueWorkViewSet(VisibleToUserMixin, viewsets.GenericViewSet[Queue]):
    """Work a queue: claim its next case, or approve several at once where the queue allows it."""

    queryset = Queue.objects.all()
    serializer_class = CaseSerializer  # what these verbs answer with: a case
    lookup_field = "slug"

    @extend_schema(
        request=None,
        responses={
            200: CaseSerializer,
            204: OpenApiResponse(description="The queue has no unclaimed case."),
            **error_responses(401, 403, 404),
        },
    )
    @action(detail=True, methods=["post"])
    def next(self, request: Request, slug: str | None = None) -> Response:
        """Claim and return the most urgent unclaimed case of the queue (urgent first, then by due time)."""
        case = services.claim_next(user=acting_user(request), queue=self.get_object())
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _case_response(case, request)

    @extend_schema(
        request=BatchApproveSerializer,
        responses={200: BatchResultSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="batch-approve")
    def batch_approve(self, request: Request, slug: str | None = None) -> Response:
        """Approve several cases of this queue with one batch id; cases held by others or decided are skipped."""
        queue = self.get_object()
        serializer = BatchApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        result = services.batch_approve(
            user=acting_user(request), queue=queue, case_ids=data["cases"], seconds_spent=data.get("seconds_spent")
        )
        return Response(BatchResultSerializer(result).data)


class JSONLinesRenderer(JSONRenderer):
    """`?format=jsonl`: the export streams its own lines; an error answer is plain JSON."""

    media_type = "application/x-ndjson"
    format = "jsonl"


class CSVRenderer(JSONRenderer):
    """`?format=csv`: the export streams its own rows; an error answer is plain JSON."""

    media_type = "text/csv"
    format = "csv"


class LabelExportView(APIView):
    """Every label of the categories you may see (or one, `category`), oldest first, streamed as JSON lines
    (`format=jsonl`, the default) or CSV (`format=csv`); `since`, `until` and `passed_gate=true` narrow it.
    The fields, in order: id, case, external_id, category, label, model_label, output, input (always redacted),
    source, reviewer, certified, passed_gate, reason_code, model_version, policy_version, created_at.
    Data curators and superusers only."""

    renderer_classes = [JSONRenderer, JSONLinesRenderer, CSVRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # DRF answers an unknown `?format=` with a 404; here it is a bad parameter, named.
        try:
            return super().perform_content_negotiation(request, force)
        except (NotFound, Http404) as exc:
            raise ValidationError({"format": [f"Choose one of {', '.join(export.FORMATS)}."]}) from exc

    @extend_schema(
        parameters=[
            OpenApiParameter("category", str, description="Only this category's labels (slug)."),
            OpenApiParameter("format", str, enum=list(export.FORMATS), description="jsonl (default) or csv."),
            OpenApiParameter("since", str, description="Labels made at or after (ISO 8601 with an offset)."),
            OpenApiParameter("until", str, description="Labels made before (ISO 8601 with an offset)."),
            OpenApiParameter("passed_gate", bool, description="true: only labels past the quality gate."),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                response=OpenApiTypes.STR, description="One JSON object per line, per label."
            ),
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR, description="A header, then a row per label."
            ),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        user = acting_user(request)
        export.require_exporter(user)
        try:
            wanted = export.ExportRequest.parse(request.query_params, user)
        except Category.DoesNotExist as exc:
            raise NotFound("No such category, or not visible to you.") from exc
        content_type = "text/csv; charset=utf-8" if wanted.format == "csv" else "application/x-ndjson; charset=utf-8"
        response = StreamingHttpResponse(export.lines(wanted, user), content_type=content_type)
        name = wanted.category.slug if wanted.category else "all"
        response["Content-Disposition"] = f'attachment; filename="labels-{name}.{wanted.format}"'
        return response
