"""The HTTP side of a webhook: signing a body, and one POST that reports what happened instead of raising.

http.client rather than urllib.request: the headers go out spelled exactly as documented (urllib re-cases them),
and nothing is followed or proxied behind the endpoint owner's back: a redirect is a failed attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.utils import timezone

# Only the status matters; a receiver's body is not kept (it is not ours to store), only its first bytes read.
RESPONSE_READ_BYTES = 1024
ERROR_TEXT_LENGTH = 500
USER_AGENT = "HITL-Desk-Webhooks/1"


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str, body: bytes) -> str:
    """The `X-HITL-Signature` value: `sha256=` and the hex HMAC-SHA256 of the raw body under the endpoint secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, *, headers: dict[str, str], timeout_seconds: int) -> AttemptResult:
    """POST `body` to `url` within `timeout_seconds`; never raises for what the receiver (or the network) does."""
    started_at = timezone.now()
    clock = time.perf_counter()
    status_code: int | None = None
    error = ""
    connection: http.client.HTTPConnection | None = None
    try:
        connection, path = _connect(url, timeout_seconds)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_BYTES)
        status_code = response.status
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code} {response.reason}"
    except TimeoutError:
        error = f"no answer within {timeout_seconds} s"
    except (ConnectionError, socket.gaierror) as exc:
        error = f"connection failed: {exc}"
    except (OSError, http.client.HTTPException, ValueError) as exc:  # TLS, a garbled answer, a bad URL...
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if connection is not None:
            connection.close()
    duration_ms = int((time.perf_counter() - clock) * 1000)
    return AttemptResult(started_at, duration_ms, status_code, error[:ERROR_TEXT_LENGTH])


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        raise ValueError(f"unsupported scheme {parts.scheme!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return connection, path
