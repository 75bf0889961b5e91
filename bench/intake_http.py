"""bench/intake.py's requests over HTTP: where they go (`Target`: the project's API or the floor's), single
POSTs on one keep-alive connection or several in threads, unauthenticated POSTs (what HTTP, gunicorn and DRF
cost alone), bulk batches, and the summaries of their round trips and rates.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from common import BenchError
from common_measure import latency_summary, percentile
from common_server import HttpClient
from intake_cases import BULK_BATCH, CATEGORY_SLUG, case_body

UNAUTHENTICATED_REQUESTS = 200
PROGRESS_EVERY = 500


# --- Measurements ---------------------------------------------------------------------------------------------


def request_summary(seconds: list[float], wall: float) -> dict[str, float]:
    """Round trips in ms (p50, p90, p99, max, mean) and the request rate."""
    ms = [s * 1000 for s in seconds]
    return {**latency_summary(ms, (50, 90, 99), digits=3), "requests_per_s": round(len(ms) / wall, 1)}


@dataclass(frozen=True)
class Target:
    """Where a run sends its cases, the project's API or the floor's, and the status a stored case answers."""

    name: str
    port: int
    token: str
    single_path: str
    bulk_path: str
    bulk_status: int

    def client(self) -> HttpClient:
        return HttpClient(self.port, self.token)


def project_target(port: int, token: str) -> Target:
    return Target("project", port, token, "/api/v1/cases/", "/api/v1/cases/bulk/", bulk_status=200)


def floor_target(port: int, token: str) -> Target:
    return Target("floor", port, token, "/floor/cases/", "/floor/cases/bulk/", bulk_status=201)


def single_bodies(rng: random.Random, prefix: str, count: int) -> list[bytes]:
    return [json.dumps(case_body(rng, f"{prefix}-{i:07d}")).encode() for i in range(count)]


def post_singles(
    client: HttpClient, target: Target, bodies: list[bytes], *, quiet: bool
) -> tuple[list[float], Counter[str]]:
    """Each body in turn on one connection: the round trips, and the routes the project answered."""
    times: list[float] = []
    routes: Counter[str] = Counter()
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post(target.single_path, body)
        if status != 201:
            raise BenchError(f"POST {target.single_path} ({target.name}) answered {status}: {data[:500]!r}")
        times.append(elapsed)
        route = json.loads(data).get("route")
        if route is not None:
            routes[route] += 1
        if not quiet and i % PROGRESS_EVERY == 0:
            # The last stretch on its own too: a drift as the table grows shows here, not in the running total.
            recent, so_far = sorted(times[-PROGRESS_EVERY:]), sorted(times)
            print(
                f"  single ({target.name}): {i}/{len(bodies)}  last {len(recent)}: p50 "
                f"{percentile(recent, 50) * 1000:.1f} ms, p99 {percentile(recent, 99) * 1000:.1f} ms  all: p50 "
                f"{percentile(so_far, 50) * 1000:.1f} ms, p99 {percentile(so_far, 99) * 1000:.1f} ms",
                flush=True,
            )
    return times, routes


@dataclass
class SingleRun:
    """One target's single-case phase: its figures (for the JSON) and its round trips (for pooling)."""

    summary: dict[str, Any]
    times: list[float]
    wall: float
    closed_by_server: int


def run_single(target: Target, bodies: list[bytes], *, clients: int, quiet: bool) -> SingleRun:
    """The bodies as single POSTs: on one keep-alive connection, sequential; or spread over `clients` threads, each
    with its own connection (to load several gunicorn workers), the rate taken over the wall time of them all."""
    connections = [target.client() for _ in range(clients)]
    shares = [bodies[i::clients] for i in range(clients)]
    results: list[tuple[list[float], Counter[str]]] = [([], Counter()) for _ in range(clients)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = post_singles(connections[n], target, shares[n], quiet=quiet or clients > 1)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    start = time.perf_counter()
    if clients == 1:
        results[0] = post_singles(connections[0], target, bodies, quiet=quiet)
    else:
        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - start
    closed = sum(c.closed_by_server for c in connections)
    for connection in connections:
        connection.close()
    if errors:
        raise errors[0]
    times = [t for share, _ in results for t in share]
    routes: Counter[str] = sum((r for _, r in results), Counter())
    summary: dict[str, Any] = {**request_summary(times, wall), "clients": clients}
    if routes:
        summary["routes"] = dict(sorted(routes.items()))
    return SingleRun(summary=summary, times=times, wall=wall, closed_by_server=closed)


def run_unauthenticated(port: int) -> dict[str, Any]:
    """Unauthenticated POSTs (401, no database work): what HTTP, gunicorn, middleware and DRF cost alone."""
    client = HttpClient(port, token=None)
    body = json.dumps({"category": CATEGORY_SLUG}).encode()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(UNAUTHENTICATED_REQUESTS):
        status, data, elapsed = client.post("/api/v1/cases/", body)
        if status != 401:
            raise BenchError(f"An unauthenticated POST answered {status}: {data[:300]!r}")
        times.append(elapsed)
    wall = time.perf_counter() - start
    client.close()
    return request_summary(times, wall)


def batches_of(rng: random.Random, prefix: str, batches: int) -> list[list[dict[str, Any]]]:
    return [[case_body(rng, f"{prefix}-{b:03d}-{i:04d}") for i in range(BULK_BATCH)] for b in range(batches)]


def rate_summary(batch_seconds: list[float]) -> dict[str, Any]:
    total = sum(batch_seconds)
    return {
        "batches": len(batch_seconds),
        "cases": len(batch_seconds) * BULK_BATCH,
        "seconds": round(total, 3),
        "cases_per_s": round(len(batch_seconds) * BULK_BATCH / total, 1),
        "batch_ms_min": round(min(batch_seconds) * 1000, 1),
        "batch_ms_median": round(sorted(batch_seconds)[len(batch_seconds) // 2] * 1000, 1),
        "batch_ms_max": round(max(batch_seconds) * 1000, 1),
    }


def cases_in_table() -> int:
    from cases.models import Case

    return Case.objects.count()


def run_bulk(target: Target, bodies: list[bytes], quiet: bool) -> tuple[dict[str, Any], list[float]]:
    """Each bulk body in turn on one connection: the rate, and each batch's round trip."""
    client = target.client()
    times: list[float] = []
    for i, body in enumerate(bodies, 1):
        status, data, elapsed = client.post(target.bulk_path, body)
        answer = json.loads(data) if status == target.bulk_status else {}
        if status != target.bulk_status or answer.get("created") != BULK_BATCH:
            raise BenchError(f"POST {target.bulk_path} ({target.name}) answered {status}: {data[:500]!r}")
        times.append(elapsed)
        if not quiet:
            print(
                f"  bulk ({target.name}): batch {i}/{len(bodies)}  {elapsed * 1000:.0f} ms  ({len(body) // 1024} KiB)",
                flush=True,
            )
    client.close()
    kib = round(sum(map(len, bodies)) / len(bodies) / 1024, 1)
    return {**rate_summary(times), "request_body_kib": kib}, times
