"""API plumbing shared by every app (the ground layer, so every app may use it): pagination, the translation of
service errors into HTTP answers, the documented refusals, and the JSON 404 under /api/."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.exceptions import Conflict

if TYPE_CHECKING:
    # Typing only: importing DRF's generics here at run time would import this module's pagination (DRF's
    # default pagination class) while this module is still loading.
    from rest_framework.generics import GenericAPIView

    from governance.permissions import VisibleQuerySet

    _ViewBase = GenericAPIView[Any]
else:
    _ViewBase = object  # a mixin: its super() reaches the viewset's GenericAPIView


class VisibleToUserMixin(_ViewBase):
    """Visibility applied once per viewset, before any filter or lookup (NetBox's `restrict` in its base viewset):
    the declared `queryset` is narrowed by its model's `visible_to(user)`, so an object the user may not see is a
    404, never a 403 that says it exists. A viewset declares `queryset` and never narrows it by hand."""

    def get_queryset(self) -> QuerySet[Any]:
        # Every viewset on this base serves a model whose queryset has `visible_to`; QuerySet[Any] cannot say so.
        return cast("VisibleQuerySet", super().get_queryset()).visible_to(self.request.user)


class CreatedCursorPagination(CursorPagination):
    """Stable pages over data that grows while someone pages through it."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request: Request) -> Any:
        return _decode_or_400(super().decode_cursor, request)


class SeqCursorPagination(CursorPagination):
    """The audit trail in the order it was written."""

    ordering = ("id",)
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Any:
        return _decode_or_400(super().decode_cursor, request)


def _decode_or_400(decode: Any, request: Request) -> Any:
    """A cursor that is not one of ours is bad input naming `cursor` (400), not a missing page (DRF's 404)."""
    try:
        return decode(request)
    except NotFound as exc:
        raise ValidationError({"cursor": ["Not a cursor of this list: use the `next` or `previous` link."]}) from exc


def django_errors_as_drf(exc: DjangoValidationError) -> ValidationError:
    """A service's ValidationError as DRF's {"field": ["message"]} (non-field errors under non_field_errors)."""
    if hasattr(exc, "error_dict"):
        detail: Any = {
            ("non_field_errors" if field == "__all__" else field): [str(m) for e in errors for m in e.messages]
            for field, errors in exc.error_dict.items()
        }
    else:
        detail = {"non_field_errors": exc.messages}
    return ValidationError(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: a service's ValidationError is a 400 naming the field, a Conflict is a 409."""
    if isinstance(exc, DjangoValidationError):
        exc = django_errors_as_drf(exc)
    if isinstance(exc, Conflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that is not an endpoint: a JSON 404, as every other answer of the API.

    CSRF-exempt like the API's views (it changes nothing): a POST with a stray cookie to an unknown path is a JSON
    404, not the CSRF middleware's HTML 403."""
    hint = "see /api/docs/"
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            hint = f"did you mean {request.path}/ (with the trailing slash)?"
    return JsonResponse({"detail": f"No API endpoint at {request.path}; {hint}"}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """The project's 500 page (`handler500`): JSON under /api/, as every other answer of the API (the error itself
    is logged with its traceback by Django); the admin's HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "detail": "Server error, logged for the operators. Retrying is safe: a repeated submission returns "
                "the stored case, and a decision already made is refused with 409."
            },
            status=500,
        )
    return defaults.server_error(request)


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of a refusal: `detail` for 401/403/404/409/413; validation errors are {"field": ["message"]}."""

    detail = serializers.CharField()


_ERROR_TEXT = {
    400: 'Validation error: {"field": ["message"]} naming each bad field. Nothing was written.',
    401: "Not authenticated: send `Authorization: Token <key>` or log in.",
    403: "You lack the grant for this (e.g. governance.submit_case on the category).",
    404: "Not found, or not visible to you.",
    409: "Conflicts with the current state (e.g. already paused, already registered). Nothing changed.",
    413: "The request body is over the size limit.",
    429: "Too many requests (or failed authentications) in a short time: wait as `Retry-After` says.",
    503: "A service the request needs is unavailable (e.g. the built-in model's artifact was refused): "
    '{"field": ["message"]} says which and what to send instead. Nothing was written.',
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI entries for the refusals an endpoint can give."""
    return {
        code: OpenApiResponse(response=None if code in (400, 503) else ErrorSerializer, description=_ERROR_TEXT[code])
        for code in codes
    }


def acting_user(request: Request) -> User:
    """The authenticated user behind a request (every endpoint requires authentication)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
