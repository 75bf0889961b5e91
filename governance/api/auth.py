"""Token authentication that cannot be used to guess tokens at speed.

DRF authenticates before it throttles, so a wrong token is a 401 that no throttle ever counts. Here each failed
token authentication counts against the client's address (`failed_auth` rate); once over the rate, every token
request from that address is a 429 until the window has passed, the right token included, so a guesser learns
nothing from the answers.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle


class FailedAuthThrottle(AnonRateThrottle):
    """Counts failed token authentications per client address."""

    scope = "failed_auth"
    num_requests: int  # set from the rate by SimpleRateThrottle.__init__ (the stubs leave them out)
    duration: int

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def over_limit(self, request: Request) -> bool:
        """Is this address already over the rate? Reads the history without adding to it."""
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def count_failure(self, request: Request) -> None:
        if not self.over_limit(request):
            self.throttle_success()


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        if not request.headers.get("Authorization", "").lower().startswith(self.keyword.lower()):
            return None  # no token offered: not ours to count
        throttle = FailedAuthThrottle()
        if throttle.over_limit(request):
            raise Throttled(wait=throttle.wait(), detail="Too many failed authentications from your address.")
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle.count_failure(request)
            raise
