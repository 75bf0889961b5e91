"""What the benchmarks serving over HTTP share: gunicorn sync workers on the scratch database (`Server`, on a
free port, started once an API token gets a 200), a keep-alive HTTP client for it (`HttpClient`, counting the
connections the server closed), and the workers' pids and resident memory.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import ROOT, BenchError

# --- gunicorn, and an HTTP client for it ----------------------------------------------------------------------

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """gunicorn sync workers (one unless told) on the scratch database `env` names, as production serves. `app` and
    `chdir` serve another WSGI app on the same settings (bench/floor); `ready_path` is the GET that answers 200 with
    the token once it is up."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="hitl-bench-gunicorn-")[1]))
    app: str = "hitl_project.wsgi"
    chdir: Path | None = None
    ready_path: str = "/api/v1/categories/"

    @property
    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            self.app,
            *(["--chdir", str(self.chdir)] if self.chdir is not None else []),
            "-w",
            str(self.workers),
            "-b",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "120",
        ]

    def start(self, token: str, timeout: float = 60.0) -> None:
        """Start it and wait until GET `ready_path` with this API token answers 200."""
        env = {**self.env, "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1"}
        with self.log_path.open("wb") as log:
            # Its own session: a Ctrl-C in the terminal reaches this script, which then stops gunicorn itself.
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.ready_path, headers={"Authorization": f"Token {token}"})
                status = conn.getresponse().status
                conn.close()
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return
            raise BenchError(f"gunicorn answered {status} to GET {self.ready_path}:\n{self.log_tail()}")
        raise BenchError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)


class HttpClient:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it, as gunicorn's sync worker does after
    every response; counted), with an API token or other headers on every request."""

    def __init__(self, port: int, token: str | None, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.closed_by_server = 0

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        """Status, body, and the round trip in seconds (request sent to last byte read)."""
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.will_close:
            self.closed_by_server += 1
        return response.status, data, elapsed

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        return self.request("POST", path, body)

    def get(self, path: str) -> tuple[int, bytes, float]:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


# --- A process's memory --------------------------------------------------------------------------------------


def worker_pids(server: Server) -> list[int]:
    """The pids of the gunicorn workers (the master's children), in order; none once it has stopped."""
    import psutil

    if server.process is None or server.process.poll() is not None:
        return []
    try:
        return sorted(child.pid for child in psutil.Process(server.process.pid).children())
    except psutil.NoSuchProcess:
        return []


def rss_mib(pid: int) -> float | None:
    """The resident set of a process in MiB (psutil: VmRSS on Linux); None if it has exited."""
    import psutil

    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.NoSuchProcess:
        return None
