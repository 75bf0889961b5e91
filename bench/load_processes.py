"""bench/load.py's processes besides gunicorn: the RQ worker (`manage.py rqworker default`), the web
workers' memory sampled during the traffic (`MemoryLog`, and what flat means), and the traffic itself
(bench/load_traffic.py under locust, in a process of its own), its progress followed line by line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from common import ROOT, BenchError
from common_server import Server, rss_mib, worker_pids

TRAFFIC = ROOT / "bench" / "load_traffic.py"
# Flat: from the first sample after a tenth of the requests (caches warm) to the end, a worker grows by at most
# this many MiB (a leak of a few KiB a request shows at 100,000 requests; allocator noise stays under it).
FLAT_SLACK_MIB = 16.0


# --- The processes: the RQ worker, memory, the traffic ---------------------------------------------------------


@dataclass
class RqWorker:
    """`manage.py rqworker default` on the run's Redis and database, in its own session (stopped by this script)."""

    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="hitl-bench-rqworker-")[1]))

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"The RQ worker exited:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # a warm shutdown: the job at hand finishes
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)


@dataclass
class MemoryLog:
    """VmRSS of each gunicorn worker (MiB), with the elapsed seconds and the requests answered so far."""

    server: Server
    samples: list[dict[str, Any]] = field(default_factory=list)

    def sample(self, elapsed: float, requests: int) -> None:
        rss: dict[str, float] = {}
        for pid in worker_pids(self.server):
            mib = rss_mib(pid)
            if mib is not None:  # else a worker that just exited
                rss[str(pid)] = mib
        self.samples.append({"elapsed": round(elapsed, 1), "requests": requests, "rss_mib": rss})

    def summary(self) -> dict[str, Any]:
        """Per worker: RSS at the start, after a tenth of the requests (the baseline), at the end, and the growth
        from the baseline; whether the same workers served from start to end."""
        first, last = self.samples[0], self.samples[-1]
        total = last["requests"]
        baseline = next(s for s in self.samples if s["requests"] >= total / 10)
        workers: dict[str, Any] = {}
        for pid, end in last["rss_mib"].items():
            base = baseline["rss_mib"].get(pid)
            workers[pid] = {
                "start_mib": first["rss_mib"].get(pid),
                "baseline_mib": base,
                "end_mib": end,
                "growth_from_baseline_mib": round(end - base, 1) if base is not None else None,
            }
        same = set(first["rss_mib"]) == set(last["rss_mib"])
        growths = [w["growth_from_baseline_mib"] for w in workers.values()]
        flat = same and bool(growths) and all(g is not None and g <= FLAT_SLACK_MIB for g in growths)
        return {
            "workers": workers,
            "baseline_at_requests": baseline["requests"],
            "requests": total,
            "same_workers_throughout": same,
            "flat": flat,
            "samples": self.samples,
        }


def run_traffic(
    spec: dict[str, Any], work_dir: Path, label: str, memory: MemoryLog | None, sample_every: float
) -> dict[str, Any]:
    """Run bench/load_traffic.py with `spec`; print its progress, sample memory on the way; return its results."""
    spec = {**spec, "results": str(work_dir / f"{label}.json"), "ids": str(work_dir / f"{label}.ids")}
    spec_path = work_dir / f"{label}.spec.json"
    spec_path.write_text(json.dumps(spec))
    log_path = work_dir / f"{label}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(TRAFFIC), str(spec_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        try:
            follow(process.stdout, label, memory, sample_every)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BenchError(f"The traffic ({label}) exited with {code}:\n{tail}")
    results: dict[str, Any] = json.loads(Path(spec["results"]).read_text())
    results["ids_file"] = spec["ids"]
    return results


def follow(stream: IO[bytes] | None, label: str, memory: MemoryLog | None, sample_every: float) -> None:
    """Read the traffic's progress lines until it ends; a line every ~10 s on the console, a memory sample every
    `sample_every` seconds."""
    assert stream is not None
    last_print = last_sample = 0.0
    for raw in stream:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        elapsed = line["elapsed"]
        if memory is not None and elapsed - last_sample >= sample_every:
            memory.sample(elapsed, line["requests"])
            last_sample = elapsed
        if elapsed - last_print >= 10:
            print(
                f"  {label}: {elapsed:5.0f} s  {line['requests']:>8,} requests  {line['created']:>7,} cases created  "
                f"5xx/errors {line['server_errors']}",
                flush=True,
            )
            last_print = elapsed
