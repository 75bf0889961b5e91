"""`manage.py serve_demo`: the whole demo in one terminal — web server, RQ worker, RQ cron scheduler, and
(unless REDIS_URL is set) the embedded Redis they share. Ctrl-C or SIGTERM stops all of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hitl_project import embedded_redis

MANAGE_PY = str(settings.BASE_DIR / "manage.py")
# A worker finishing its current job gets this long before it, and anything it forked, is killed.
STOP_GRACE_SECONDS = 15.0
POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class Child:
    """A process serve_demo started, in its own process group so it and its forks can be stopped together."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it if serve_demo dies without cleaning up (SIGKILL).

    Each child has its own process group, so the terminal's Ctrl-C does not reach it directly; this is what
    keeps a killed serve_demo from leaving children behind. Elsewhere than Linux it is a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Command(BaseCommand):
    """Serve the demo: embedded Redis, `runserver`, `rqworker default` and `rqcron hitl_project.cron`."""

    help = "Serve the demo (web, worker, cron scheduler and embedded Redis) until Ctrl-C."
    # The children run their own checks; this command only starts and stops processes.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="Where the web server listens.")

    def handle(self, *args: Any, **options: Any) -> None:
        addrport: str = options["addrport"]
        host, _, port = addrport.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            raise CommandError(f"--addrport must be HOST:PORT, not {addrport!r}.")
        if not _port_is_free(host, int(port)):
            raise CommandError(f"{addrport} is already in use (another serve_demo?); pass --addrport HOST:PORT.")

        self._stop_requested: int | None = None
        previous_handlers = {
            sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        redis_server: embedded_redis.EmbeddedRedis | None = None
        children: list[Child] = []
        exit_code = 0
        try:
            env = self._child_env()
            if not settings.REDIS_URL:
                try:
                    redis_server = embedded_redis.start()
                except embedded_redis.EmbeddedRedisError as exc:
                    raise CommandError(str(exc)) from exc
            commands = {
                # --insecure: serve the admin's CSS and JS even with DEBUG off; this is a local demo server.
                "web": ["runserver", addrport, "--noreload", "--insecure"],
                # --with-scheduler: jobs enqueued for later (retries with backoff) run too.
                "worker": ["rqworker", "default", "--with-scheduler"],
                "cron": ["rqcron", "hitl_project.cron"],
            }
            for name, command in commands.items():
                if self._stop_requested is not None:
                    break
                children.append(self._spawn(name, command, env))
            if self._stop_requested is None:
                self._announce(addrport, redis_server, children)
                exit_code = self._watch(children)
        finally:
            self._stop_children(children)
            if redis_server is not None:
                redis_server.stop()
                self.stdout.write("  stopped embedded Redis")
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        if exit_code:
            raise CommandError("A demo process exited unexpectedly; everything has been stopped.")
        self.stdout.write(self.style.SUCCESS("Demo stopped; no process left running."))

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: the main loop notices within POLL_SECONDS and stops everything in order.
        if self._stop_requested is None:
            self._stop_requested = signum

    def _child_env(self) -> dict[str, str]:
        """This process's environment, pinned to the same settings, var directory and Redis socket."""
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
        env["HITL_VAR_DIR"] = str(settings.VAR_DIR.absolute())
        if not settings.REDIS_URL:
            # Absolute, so a relative EMBEDDED_REDIS_SOCKET cannot point a child elsewhere.
            env["EMBEDDED_REDIS_SOCKET"] = str(settings.EMBEDDED_REDIS_SOCKET.absolute())
        env["PYTHONUNBUFFERED"] = "1"  # interleave the children's logs with ours as they happen
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        argv = [sys.executable, MANAGE_PY, *command]
        process = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        return Child(name=name, argv=argv, process=process)

    def _announce(
        self, addrport: str, redis_server: embedded_redis.EmbeddedRedis | None, children: list[Child]
    ) -> None:
        self.stdout.write(self.style.SUCCESS("HITL Desk demo is running:"))
        if redis_server is not None:
            self.stdout.write(f"  redis   pid {redis_server.pid:<7} embedded, socket {redis_server.socket_path}")
        else:
            self.stdout.write("  redis   external, REDIS_URL")
        for child in children:
            self.stdout.write(f"  {child.name:<7} pid {child.process.pid:<7} manage.py {' '.join(child.argv[2:])}")
        self.stdout.write(f"Open http://{addrport}/admin/ (logins: see `manage.py seed_demo`). Ctrl-C stops it all.")

    def _watch(self, children: list[Child]) -> int:
        """Wait for a stop signal; if a child exits on its own, report it and return non-zero."""
        while self._stop_requested is None:
            for child in children:
                code = child.process.poll()
                if code is not None:
                    self.stderr.write(f"{child.name} (pid {child.process.pid}) exited with code {code}; stopping.")
                    return 1
            time.sleep(POLL_SECONDS)
        self.stdout.write(f"\nStopping (signal {signal.Signals(self._stop_requested).name})...")
        return 0

    def _stop_children(self, children: list[Child]) -> None:
        """SIGTERM each child (the worker finishes its job: a warm shutdown), wait, then SIGKILL its group.

        The scheduler stops first so it enqueues nothing more, the web server last. Killing by process group
        also takes the worker's forked job processes; serve_demo never signals a process it did not start.
        """
        for child in reversed(children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            pgid = child.process.pid  # a session leader: its pid is its process group id
            if child.process.poll() is None or _group_alive(pgid):
                self.stderr.write(f"  {child.name} did not stop in time; killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                child.process.wait()
            self.stdout.write(f"  stopped {child.name}")
