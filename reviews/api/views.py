"""The human side over the API: claim, release, decide, reassign, claim-next and batch approval.

These routes live under /cases/ and /queues/ beside the cases app's own; they call reviews.services, the same
functions the admin calls. Visibility first: a case or queue the user may not see is a 404."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cases.api.serializers import CaseSerializer
from cases.models import Case, Queue
from governance.api.plumbing import VisibleToUserMixin, acting_user, error_responses
from reviews import services
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
