"""API plumbing shared by every app: pagination and the translation of service errors into HTTP answers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.exceptions import Conflict


class CreatedCursorPagination(CursorPagination):
    """Stable pages over data that grows while someone pages through it."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500


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
