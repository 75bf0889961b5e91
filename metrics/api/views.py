"""`GET /api/v1/metrics/{category}/`: every KPI of a category you may see, over a window."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from governance.api.plumbing import VisibleToUserMixin, error_responses
from governance.models import Category
from metrics.api.serializers import CategoryMetricsSerializer
from metrics.kpis import DEFAULT_WINDOW, WINDOWS, Window, category_kpis


class CategoryMetricsViewSet(VisibleToUserMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Category]):
    """The KPIs of a category (DESIGN.md, KPIs), for anyone who may see it; `reviewers` holds every person for
    superusers, data curators and whoever may change the category, only your own row otherwise."""

    queryset = Category.objects.select_related("policy")
    serializer_class = CategoryMetricsSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "category"
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "window", str, enum=list(WINDOWS), description=f"The last 1h..90d (default {DEFAULT_WINDOW})."
            ),
            OpenApiParameter("since", str, description="ISO 8601 with an offset; instead of window."),
            OpenApiParameter("until", str, description="ISO 8601 with an offset (default now); needs since."),
        ],
        responses={200: CategoryMetricsSerializer, **error_responses(400, 401, 404)},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        category = self.get_object()
        params = request.query_params
        window = Window.parse(
            window=params.get("window"), since=params.get("since"), until=params.get("until"), now=None
        )
        return Response(category_kpis(category, window, user=request.user))
