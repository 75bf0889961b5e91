"""Starting background work after a database write, without ever failing the write.

`enqueue_after_commit("app.jobs.func", *args)` puts the job on RQ once the surrounding transaction commits
(DESIGN.md: work that follows a write is enqueued with `transaction.on_commit`). Jobs are named by dotted path,
so a lower layer can start work that lives above it without importing it. If Redis is unreachable the failure
is logged, not raised: the request that wrote still succeeds, and the periodic jobs catch up on what was missed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
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


def _offer(what: str, catch_up: str, put: Callable[[Queue], object]) -> bool:
    """The one rule for a Redis that is down: log it and carry on (False), never raise into a request or a job.
    Everything enqueued has a periodic job that catches up on what missed its own job (`catch_up` names it)."""
    try:
        put(queue())
    except (RedisError, OSError) as exc:
        logger.warning("Could not enqueue %s (Redis unreachable: %s); %s will catch up.", what, exc, catch_up)
        return False
    return True


def enqueue_now(func_path: str, *args: Any, **kwargs: Any) -> bool:
    """Put `func_path(*args, **kwargs)` on the queue; False (logged) if Redis could not take it."""
    return _offer(f"{func_path}{args!r}", "the periodic jobs", lambda q: q.enqueue(func_path, *args, **kwargs))


def enqueue_many_now(func_path: str, arg_lists: Sequence[tuple[Any, ...]], *, what: str, catch_up: str) -> bool:
    """One job per argument tuple, in one round trip to Redis (one failed connection, not one per job); `what`
    says in words what the jobs are, for the log."""
    if not arg_lists:
        return True
    return _offer(
        what,
        catch_up,
        lambda q: q.enqueue_many([Queue.prepare_data(func_path, args=args) for args in arg_lists]),
    )


def enqueue_later(delay: timedelta, func_path: str, *args: Any, what: str, catch_up: str) -> bool:
    """Run `func_path(*args)` after `delay` (RQ's scheduler); False (logged) if Redis could not take it."""
    return _offer(what, catch_up, lambda q: q.enqueue_in(delay, func_path, *args))


def enqueue_after_commit(func_path: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue the job once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue_now(func_path, *args, **kwargs))
