"""Starting background work after a database write, without ever failing the write.

`enqueue_after_commit("app.jobs.func", *args)` puts the job on RQ once the surrounding transaction commits
(DESIGN.md: work that follows a write is enqueued with `transaction.on_commit`). Jobs are named by dotted path,
so a lower layer can start work that lives above it without importing it. If Redis is unreachable the failure
is logged, not raised: the request that wrote still succeeds, and the periodic jobs catch up on what was missed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue

logger = logging.getLogger("hitl.queueing")

QUEUE_NAME = "default"
# Fail fast when Redis is down: a request must not hang on it (redis-py otherwise retries with backoff).
CONNECT_TIMEOUT_SECONDS = 0.5


@functools.cache
def _connection() -> Redis:
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": 2,
        "retry": Retry(backoff=NoBackoff(), retries=0),
    }
    if settings.REDIS_URL:
        return Redis.from_url(settings.REDIS_URL, **options)
    return Redis(unix_socket_path=str(settings.EMBEDDED_REDIS_SOCKET), db=0, **options)


def queue() -> Queue:
    """The default RQ queue on the fail-fast connection (for callers that need enqueue_many or enqueue_in)."""
    return Queue(QUEUE_NAME, connection=_connection())


def enqueue_now(func_path: str, *args: Any, **kwargs: Any) -> bool:
    """Put `func_path(*args, **kwargs)` on the queue; False (logged) if Redis could not take it."""
    try:
        queue().enqueue(func_path, *args, **kwargs)
    except (RedisError, OSError) as exc:
        logger.warning(
            "Could not enqueue %s%r (Redis unreachable: %s); the periodic jobs will catch up.", func_path, args, exc
        )
        return False
    return True


def enqueue_after_commit(func_path: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue the job once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue_now(func_path, *args, **kwargs))
