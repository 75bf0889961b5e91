"""Categories (with their policy, pause and resume) and model versions. Thin: validation in serializers,
every write in governance.services, visibility from `visible_to(user)` before any lookup."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from governance import services
from governance.api.plumbing import VisibleToUserMixin, acting_user, error_responses
from governance.api.serializers import (
    CATEGORY_FIELDS,
    CategoryPolicySerializer,
    CategorySerializer,
    ModelVersionSerializer,
    PolicyChangeSerializer,
    PromoteSerializer,
    ReasonSerializer,
    RetrainCadenceSerializer,
)
from governance.filtersets import ModelVersionFilterSet
from governance.models import Category, ModelVersion
from governance.permissions import can_change_category, can_pause_category, can_retrain


class CategoryViewSet(
    VisibleToUserMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Category],
):
    """Categories you may see. Product owners (and superusers) create them; `change_category` on a category
    lets you change its policy and pause or resume it."""

    queryset = Category.objects.select_related("policy")
    serializer_class = CategorySerializer
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self) -> QuerySet[Category]:
        # The fields higher layers registered (a category's queues) are read once per page.
        return super().get_queryset().prefetch_related(*CATEGORY_FIELDS.prefetches())

    def _require_change(self, category: Category) -> None:
        if not can_change_category(self.request.user, category):
            raise PermissionDenied(f"You need governance.change_category on {category.slug!r} to do this.")

    def _require_pause(self, category: Category) -> None:
        if not can_pause_category(self.request.user, category):
            raise PermissionDenied(
                f"Pausing and resuming {category.slug!r} needs governance.change_category on it, or the Model Steward"
                " role with the category granted."
            )

    @extend_schema(responses={201: CategorySerializer, **error_responses(400, 401, 403, 409)})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.has_perm("governance.add_category"):
            raise PermissionDenied("Only product owners and superusers may create categories.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.create_category(user=acting_user(request), **serializer.validated_data)
        return Response(self.get_serializer(category).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        responses={200: CategoryPolicySerializer, **error_responses(401, 404)},
    )
    @extend_schema(
        methods=["PATCH"],
        request=PolicyChangeSerializer,
        responses={200: CategoryPolicySerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get", "patch"], url_path="policy")
    def policy(self, request: Request, slug: str | None = None) -> Response:
        """The category's current policy; PATCH makes a new version and needs a `reason`."""
        category = self.get_object()
        if request.method == "GET":
            return Response(CategoryPolicySerializer(category.policy).data)
        self._require_change(category)
        serializer = PolicyChangeSerializer(category.policy, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason")
        policy = services.update_policy(category=category, user=acting_user(request), changes=changes, reason=reason)
        return Response(CategoryPolicySerializer(policy).data)

    @extend_schema(
        request=RetrainCadenceSerializer, responses={200: CategorySerializer, **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["patch"], url_path="retraining")
    def retraining(self, request: Request, slug: str | None = None) -> Response:
        """Set how often the category's built-in model is retrained (`retrain_every_days`, 0: off), with a
        `reason`; for whoever may retrain it (model stewards, or those who may change the category)."""
        category = self.get_object()
        if not can_retrain(request.user, category):
            raise PermissionDenied(f"You may not set the retraining of {category.slug!r} (model stewards may).")
        serializer = RetrainCadenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.set_retrain_cadence(
            category=category, user=acting_user(request), **serializer.validated_data
        )
        return Response(self.get_serializer(category).data)

    @extend_schema(
        request=ReasonSerializer, responses={200: CategorySerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, slug: str | None = None) -> Response:
        """Turn automation off for the category (human-first), with a reason."""
        category = self.get_object()
        self._require_pause(category)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.pause_category(
            category=category,
            user=acting_user(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(self.get_serializer(category).data)

    @extend_schema(
        request=ReasonSerializer, responses={200: CategorySerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, slug: str | None = None) -> Response:
        """Turn automation back on, with a reason. Only a person resumes."""
        category = self.get_object()
        self._require_pause(category)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        category = services.resume_category(
            category=category,
            user=acting_user(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(self.get_serializer(category).data)


class ModelVersionViewSet(
    VisibleToUserMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[ModelVersion],
):
    """Model versions of the categories you may see. Model stewards (and superusers) register and promote them."""

    queryset = ModelVersion.objects.select_related("category", "approved_by")
    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilterSet
    pagination_class = None

    @extend_schema(responses={201: ModelVersionSerializer, **error_responses(400, 401, 403, 409)})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.has_perm("governance.add_modelversion"):
            raise PermissionDenied("Only model stewards and superusers may register model versions.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model_version = services.register_model_version(
            category=data["category"],
            name=data["name"],
            version=data["version"],
            user=acting_user(request),
            status=data["status"],
            reason=data.get("reason", ""),
            notes=data.get("notes", ""),
            metrics=data.get("metrics"),
        )
        return Response(self.get_serializer(model_version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PromoteSerializer, responses={200: ModelVersionSerializer, **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: str | None = None) -> Response:
        """Move the version along registered -> shadow -> canary -> active -> retired, with a reason."""
        model_version = self.get_object()
        if not request.user.has_perm("governance.change_modelversion"):
            raise PermissionDenied("Only model stewards and superusers may promote model versions.")
        serializer = PromoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model_version = services.promote_model_version(
            model_version=model_version,
            status=serializer.validated_data["status"],
            user=acting_user(request),
            reason=serializer.validated_data["reason"],
        )
        return Response(self.get_serializer(model_version).data)
