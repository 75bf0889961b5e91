"""bench/load.py's phases: gunicorn started with every worker up and stopped with its log read, the mixed
phase (the traffic with the workers' memory sampled), the intake phase (1 worker against 2, alternately), and
the statuses of all of them counted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common_server import Server, worker_pids
from load_checks import log_problems
from load_fixture import Fixture
from load_processes import MemoryLog, RqWorker, run_traffic

# --- The phases ------------------------------------------------------------------------------------------------


def traffic_spec(
    fixture: Fixture, port: int, *, phase: str, users: int, seconds: float, warmup: float, seed: int, id_prefix: str
) -> dict[str, Any]:
    return {
        "host": f"http://127.0.0.1:{port}",
        "phase": phase,
        "users": users,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "seed": seed,
        "id_prefix": id_prefix,
        "categories": fixture.categories,
        "tokens": fixture.tokens,
    }


def start_server(env: dict[str, str], workers: int, fixture: Fixture) -> Server:
    server = Server(env=env, workers=workers)
    server.start(fixture.tokens["integration"][0])
    # Every worker up (Server.start returns once one of them answers).
    deadline = time.monotonic() + 30
    while len(worker_pids(server)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return server


def stop_server(server: Server, problems: list[dict[str, Any]]) -> None:
    problems.extend(log_problems(server.log_path, f"gunicorn -w {server.workers}"))
    server.stop()


def run_mixed(
    args: argparse.Namespace,
    env: dict[str, str],
    fixture: Fixture,
    work_dir: Path,
    problems: list[dict[str, Any]],
    rq: RqWorker,
) -> dict[str, Any]:
    seconds = args.minutes * 60
    server = start_server(env, args.workers, fixture)
    try:
        print(
            f"gunicorn up with {args.workers} workers on 127.0.0.1:{server.port}; mixed traffic for "
            f"{args.minutes:g} min with {args.users} users"
            + (f" (and on until {args.min_requests:,} requests)" if args.min_requests else "")
            + " ...",
            flush=True,
        )
        memory = MemoryLog(server)
        memory.sample(0.0, 0)
        spec = traffic_spec(
            fixture,
            server.port,
            phase="mixed",
            users=args.users,
            seconds=seconds,
            warmup=0,
            seed=args.seed,
            id_prefix="mixed",
        )
        spec.update(min_requests=args.min_requests, max_seconds=max(seconds, args.max_minutes * 60))
        traffic = run_traffic(spec, work_dir, "mixed", memory, sample_every=max(5.0, seconds / 30))
        memory.sample(traffic["seconds"], traffic["requests"])
        rq.check_alive()
        return {**traffic, "workers": args.workers, "memory": memory.summary()}
    finally:
        stop_server(server, problems)


def run_scaling(
    args: argparse.Namespace, env: dict[str, str], fixture: Fixture, work_dir: Path, problems: list[dict[str, Any]]
) -> dict[str, Any]:
    """New single intakes from the same users against 1 worker, then 2, alternately: cases created per second."""
    runs: list[dict[str, Any]] = []
    for round_no in range(1, args.scale_rounds + 1):
        for workers in (1, 2):
            server = start_server(env, workers, fixture)
            try:
                label = f"intake-{workers}w-{round_no}"
                print(
                    f"Intake with {workers} worker(s), round {round_no}: {args.scale_users} users, "
                    f"{args.scale_seconds:g} s after a {args.scale_warmup:g} s warm-up ...",
                    flush=True,
                )
                spec = traffic_spec(
                    fixture,
                    server.port,
                    phase="intake",
                    users=args.scale_users,
                    seconds=args.scale_seconds,
                    warmup=args.scale_warmup,
                    seed=args.seed + round_no,
                    id_prefix=label,
                )
                traffic = run_traffic(spec, work_dir, label, None, sample_every=1e9)
                print(f"  {traffic['created_per_s']:.1f} cases/s", flush=True)
                runs.append({**traffic, "workers": workers, "round": round_no})
            finally:
                stop_server(server, problems)
    rates = {w: [r["created_per_s"] for r in runs if r["workers"] == w] for w in (1, 2)}
    medians = {w: statistics.median(v) for w, v in rates.items()}
    return {
        "users": args.scale_users,
        "seconds": args.scale_seconds,
        "rounds": args.scale_rounds,
        "created_per_s": {f"{w}_workers": v for w, v in rates.items()},
        "median_per_s": {f"{w}_workers": m for w, m in medians.items()},
        "ratio": round(medians[2] / medians[1], 3) if medians[1] else None,
        "runs": runs,
    }


def all_statuses(phases: list[dict[str, Any]]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for phase in phases:
        for counts in phase["counts"].values():
            statuses.update({int(k): v for k, v in counts.items()})
    return statuses


def unexpected_total(phases: list[dict[str, Any]]) -> int:
    return sum(phase["unexpected_count"] for phase in phases)
