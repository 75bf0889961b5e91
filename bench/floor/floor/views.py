"""The floor's endpoints: one case, a list of up to 500, and a readiness probe for the bench."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from floor.models import FloorCase
from floor.serializers import FloorCaseSerializer

MAX_BULK_ITEMS = 500  # the project's HITL_MAX_BULK_ITEMS


class CaseCreateView(generics.CreateAPIView[FloorCase]):
    """`POST /floor/cases/`: validate, insert, 201 with the stored row; a repeated external id is a 409."""

    queryset = FloorCase.objects.all()
    serializer_class = FloorCaseSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().create(request, *args, **kwargs)
        except IntegrityError:
            return Response({"detail": "A case with this external_id exists."}, status=status.HTTP_409_CONFLICT)


class BulkCreateView(APIView):
    """`POST /floor/cases/bulk/` with `{"cases": [...]}` (as the project's bulk endpoint): one `many=True`
    serializer, one `bulk_create`, 201 with the new ids in order. All or nothing: any invalid item is a 400."""

    def post(self, request: Request) -> Response:
        data = request.data
        items = data.get("cases") if isinstance(data, dict) else data
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK_ITEMS:
            raise ValidationError({"cases": [f"A list of 1 to {MAX_BULK_ITEMS} cases."]})
        serializer = FloorCaseSerializer(data=items, many=True)
        serializer.is_valid(raise_exception=True)
        rows = [FloorCase(**attrs) for attrs in serializer.validated_data]
        try:
            FloorCase.objects.bulk_create(rows)
        except IntegrityError:
            return Response(
                {"detail": "A case with one of these external_ids exists."}, status=status.HTTP_409_CONFLICT
            )
        return Response({"created": len(rows), "ids": [row.pk for row in rows]}, status=status.HTTP_201_CREATED)


class ReadyView(APIView):
    """`GET /floor/ready/`: 200 once the server answers and the token authenticates."""

    def get(self, request: Request) -> Response:
        return Response({"ready": True})
