"""bench/labels.py's export: gunicorn with a longer timeout (`ExportServer`), the web worker's memory and
CPU read from /proc (its peak resident set reset before each request, sampled meanwhile), one export streamed
over http.client and its records counted against the database, and a cProfile of one export in this
process.
"""

from __future__ import annotations

import cProfile
import http.client
import os
import threading
import time
from pathlib import Path
from typing import Any

from common import BenchError
from common_measure import profile_text
from common_server import Server
from labels_data import CATEGORY_SLUG, Fixture

EXPORT_URL = "/api/v1/labels/?category={slug}&format={fmt}"
WARMUP_LABELS = 1000
SERVER_TIMEOUT_SECONDS = 900  # gunicorn's --timeout here: a sync worker is killed after it, mid-stream
READ_BYTES = 64 * 1024


# --- The web process: its memory and CPU ----------------------------------------------------------------------


class ExportServer(Server):
    """common_server.Server with a longer --timeout: a sync worker is killed by its timeout even mid-stream."""

    @property
    def command(self) -> list[str]:
        command = super().command
        command[command.index("--timeout") + 1] = str(SERVER_TIMEOUT_SECONDS)
        return command

    def worker_pid(self) -> int:
        """The one worker's pid (gunicorn's master forks it)."""
        assert self.process is not None
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) != 1:
            raise BenchError(f"Expected one gunicorn worker under pid {master}, found {children}")
        return int(children[0])


def status_kib(pid: int, field: str) -> int:
    """A figure of /proc/<pid>/status in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"No {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak resident set of the process to its current one (clear_refs 5); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler(threading.Thread):
    """The largest VmRSS seen every 50 ms: the peak where clear_refs is refused, and a check of VmHWM anyway."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_kib = status_kib(pid, "VmRSS")
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.max_kib = max(self.max_kib, status_kib(self.pid, "VmRSS"))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.max_kib


def stream(port: int, token: str, path: str) -> tuple[int, int, int, float, float]:
    """GET `path`, reading the body to its end: status, bytes, lines, seconds to the first byte and to the last."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SERVER_TIMEOUT_SECONDS)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    first = time.perf_counter() - start
    size = lines = 0
    while chunk := response.read(READ_BYTES):
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    conn.close()
    return response.status, size, lines, first, elapsed


def measure_export(server: ExportServer, fx: Fixture, fmt: str, expected: int, warmup_until: str) -> dict[str, Any]:
    """One warm-up export of the oldest WARMUP_LABELS, then the whole category: rate, CPU and memory of the worker."""
    path = EXPORT_URL.format(slug=CATEGORY_SLUG, fmt=fmt)
    warm_status, *_ = stream(server.port, fx.token, f"{path}&until={warmup_until}")
    if warm_status != 200:
        raise BenchError(f"The warm-up export answered {warm_status}:\n{server.log_tail()}")
    pid = server.worker_pid()
    rss_before = status_kib(pid, "VmRSS")
    peak_reset = reset_peak(pid)
    cpu_before = cpu_seconds(pid)
    sampler = RssSampler(pid)
    sampler.start()
    status, size, lines, first, elapsed = stream(server.port, fx.token, path)
    sampled_kib = sampler.stop()
    cpu = cpu_seconds(pid) - cpu_before
    peak_kib = status_kib(pid, "VmHWM") if peak_reset else sampled_kib
    rss_after = status_kib(pid, "VmRSS")
    records = lines - (1 if fmt == "csv" else 0)
    if status != 200 or records != expected:
        raise BenchError(f"GET {path}: status {status}, {records:,} records of {expected:,}:\n{server.log_tail()}")
    result = {
        "path": path,
        "records": records,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "first_byte_ms": round(first * 1000, 1),
        "records_per_second": round(records / elapsed),
        "worker_cpu_seconds": round(cpu, 2),
        "worker_cpu_us_per_record": round(cpu / records * 1e6, 1),
        "rss_before_mib": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_growth_mib": round((peak_kib - rss_before) / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "peak_from": "VmHWM after clear_refs" if peak_reset else "VmRSS sampled every 50 ms",
        "sampled_peak_rss_mib": round(sampled_kib / 1024, 1),
    }
    print(
        f"  {fmt}: {records:,} records, {size / 2**20:.0f} MiB in {elapsed:.1f} s = {records / elapsed:,.0f}/s "
        f"(worker CPU {cpu:.1f} s); worker RSS {rss_before / 1024:.0f} MiB before, peak "
        f"{peak_kib / 1024:.0f} MiB (+{(peak_kib - rss_before) / 1024:.1f})",
        flush=True,
    )
    return result


def profile_export(fx: Fixture, fmt: str, top: int) -> str:
    """A cProfile of the whole export in this process, through the real view (Django's test client)."""
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=fx.curator_id))
    profiler = cProfile.Profile()

    def work() -> None:
        response: Any = client.get(EXPORT_URL.format(slug=CATEGORY_SLUG, fmt=fmt))
        for _ in response.streaming_content:
            pass

    profiler.runcall(work)
    return profile_text(profiler, "cumulative", top) + profile_text(profiler, "tottime", top)
