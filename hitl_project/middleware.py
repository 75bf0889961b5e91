"""Refuse over-large request bodies with a JSON 413 before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse


class RequestBodyLimitMiddleware:
    """Bodies over 256 KiB (8 MiB for bulk intake) are refused with 413 and a message that says what to do."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.HITL_MAX_BULK_BODY_BYTES if request.path.endswith("/bulk/") else settings.HITL_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "The Content-Length header is not a number."}, status=400)
        if length > limit:
            return JsonResponse(
                {
                    "detail": (
                        f"The request body is {length} bytes; the limit here is {limit} bytes. "
                        "Send fewer or smaller items (bulk intake takes up to 500 cases)."
                    )
                },
                status=413,
            )
        return self.get_response(request)


class RejectNulInUrlMiddleware:
    """A NUL character (%00) in the path or the query string is refused with 400 before any view reads it.

    No URL of ours can mean anything with one, and PostgreSQL cannot compare text with it: every filter, lookup
    and slug would otherwise fail on its own, as a 500.
    """

    MESSAGE = "The URL holds a NUL character (%00), which no path or parameter here accepts; remove it."

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        in_query = any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists())
        if "\x00" in request.path or in_query:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": self.MESSAGE}, status=400)
            return HttpResponseBadRequest(self.MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
