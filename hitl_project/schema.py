"""The OpenAPI schema generator of the API (drf-spectacular), in its own module: the pagination and error helpers
in governance.api.plumbing load while DRF's generics are still importing, this one after."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from governance.api.plumbing import error_responses


class HitlAutoSchema(AutoSchema):
    """The OpenAPI schema, with the refusals every operation can give beside those it declares itself.

    Any request can be malformed (400: a bad parameter, a NUL in the URL), unauthenticated (401), lack a grant
    (403) or be throttled (429); one that names an object can miss it (404); one with a body can be too large
    (413). Declaring them everywhere keeps the schema true to the API, which schemathesis checks in the tests.
    """

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = [400, 401, 403, 429]
        if "{" in self.path:
            codes.append(404)
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append(413)
        for code, response in error_responses(*codes).items():
            if str(code) not in responses:
                # drf-spectacular leaves this helper unannotated.
                responses[str(code)] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    response, str(code), direction=direction
                )
        return responses
