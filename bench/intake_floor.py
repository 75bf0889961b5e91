"""bench/intake.py against the floor (bench/floor/, a plain DRF app on the same gunicorn settings): starting
it, the alternated rounds on the same payloads with their ratios project / floor and the medians, and the
scaling phase (2 gunicorn workers against 1, for the project and for the floor).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from common import ROOT, BenchError, ScratchDatabase
from common_server import Server
from intake_cases import case_body
from intake_http import (
    SingleRun,
    Target,
    batches_of,
    cases_in_table,
    rate_summary,
    request_summary,
    run_bulk,
    run_single,
    single_bodies,
)

FLOOR_DIR = ROOT / "bench" / "floor"


# --- The floor: a plain DRF app beside the project, and the rounds against it --------------------------------


def start_floor(database: ScratchDatabase, env: dict[str, str], *, workers: int) -> tuple[Server, str]:
    """Migrate the floor's scratch database, take its API token, and serve it on the project's gunicorn settings."""
    floor_env = {**env, "DATABASE_URL": database.url, "DJANGO_SETTINGS_MODULE": "floor.settings"}
    setup = subprocess.run(
        [sys.executable, "manage.py", "floor_setup"], cwd=FLOOR_DIR, env=floor_env, capture_output=True, text=True
    )
    if setup.returncode != 0:
        raise BenchError(f"The floor's floor_setup failed ({setup.returncode}):\n{setup.stderr[-2000:]}")
    token = setup.stdout.strip().splitlines()[-1]
    server = Server(env=floor_env, workers=workers, app="floor.wsgi", chdir=FLOOR_DIR, ready_path="/floor/ready/")
    server.start(token)
    return server, token


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def pooled_single(runs: list[SingleRun]) -> dict[str, Any]:
    """The figures of several single phases taken together: latencies over all their requests, the rate over the
    sum of their walls."""
    times = [t for run in runs for t in run.times]
    wall = sum(run.wall for run in runs)
    routes: Counter[str] = Counter()
    for run in runs:
        routes.update(run.summary.get("routes", {}))
    pooled: dict[str, Any] = {**request_summary(times, wall), "clients": runs[0].summary["clients"], "runs": len(runs)}
    if routes:
        pooled["routes"] = dict(sorted(routes.items()))
    pooled["closed_by_server"] = sum(run.closed_by_server for run in runs)
    return pooled


def print_round(number: int, entry: dict[str, Any]) -> None:
    single, bulk, ratios = entry["single"], entry["bulk"], entry["ratios"]
    sp, sf, bp, bf = single["project"], single["floor"], bulk["project"], bulk["floor"]
    print(
        f"  round {number}: single {sp['requests_per_s']:.0f} / {sf['requests_per_s']:.0f} req/s = "
        f"{ratios['single_rps']:.3f}x  (p50 {sp['p50_ms']:.1f} / {sf['p50_ms']:.1f} ms, p99 {sp['p99_ms']:.1f} / "
        f"{sf['p99_ms']:.1f} ms)  bulk {bp['cases_per_s']:.0f} / {bf['cases_per_s']:.0f} cases/s = "
        f"{ratios['bulk_cases_per_s']:.3f}x   [project / floor]",
        flush=True,
    )


@dataclass
class Rounds:
    """The alternated rounds: per round the figures of both and their ratios; the project's phases kept whole for
    the absolute budgets; the last round's bulk batches for the in-process phases."""

    project_cases_before: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    project_single: list[SingleRun] = field(default_factory=list)
    floor_single: list[SingleRun] = field(default_factory=list)
    project_bulk_times: list[float] = field(default_factory=list)
    floor_bulk_times: list[float] = field(default_factory=list)
    last_batches: list[list[dict[str, Any]]] = field(default_factory=list)


def run_rounds(
    project: Target, floor: Target, rng: random.Random, *, rounds: int, requests: int, batches: int, clients: int
) -> Rounds:
    """Round after round, the same payloads to the project and to the floor (the first one swapping every round):
    N single requests each, then M bulk batches each (fresh external ids every round; each has its own database, so
    the same ids do not collide)."""
    result = Rounds(project_cases_before=cases_in_table())
    for number in range(1, rounds + 1):
        bodies = single_bodies(rng, f"r{number}-single", requests)
        bulk_batches = batches_of(rng, f"r{number}-bulk", batches)
        bulk_bodies = [json.dumps({"cases": batch}).encode() for batch in bulk_batches]
        before = cases_in_table()
        print(f"Round {number}/{rounds}: {requests} single requests, then {batches} bulk batches, each ...", flush=True)
        # Who goes first swaps every round, so neither side always meets a warmer cache or a busier disk.
        if number % 2:
            p_single = run_single(project, bodies, clients=clients, quiet=False)
            f_single = run_single(floor, bodies, clients=clients, quiet=True)
            p_bulk, p_times = run_bulk(project, bulk_bodies, quiet=True)
            f_bulk, f_times = run_bulk(floor, bulk_bodies, quiet=True)
        else:
            f_single = run_single(floor, bodies, clients=clients, quiet=True)
            p_single = run_single(project, bodies, clients=clients, quiet=False)
            f_bulk, f_times = run_bulk(floor, bulk_bodies, quiet=True)
            p_bulk, p_times = run_bulk(project, bulk_bodies, quiet=True)
        entry = {
            "round": number,
            "project_cases_in_table_before": before,
            "single": {"project": p_single.summary, "floor": f_single.summary},
            "bulk": {"project": p_bulk, "floor": f_bulk},
            "ratios": {
                "single_rps": ratio(p_single.summary["requests_per_s"], f_single.summary["requests_per_s"]),
                "single_p50_slower": ratio(p_single.summary["p50_ms"], f_single.summary["p50_ms"]),
                "single_p99_slower": ratio(p_single.summary["p99_ms"], f_single.summary["p99_ms"]),
                "bulk_cases_per_s": ratio(p_bulk["cases_per_s"], f_bulk["cases_per_s"]),
            },
        }
        print_round(number, entry)
        result.entries.append(entry)
        result.project_single.append(p_single)
        result.floor_single.append(f_single)
        result.project_bulk_times.extend(p_times)
        result.floor_bulk_times.extend(f_times)
        result.last_batches = bulk_batches
    return result


def versus_floor(rounds: Rounds) -> dict[str, Any]:
    """The JSON of the rounds: each round, the medians of the ratios, and the floor's own figures pooled."""
    medians = {
        name: round(statistics.median(entry["ratios"][name] for entry in rounds.entries), 3)
        for name in rounds.entries[0]["ratios"]
    }
    return {
        "rounds": rounds.entries,
        "median_ratios": medians,
        "floor_single": pooled_single(rounds.floor_single),
        "floor_bulk": rate_summary(rounds.floor_bulk_times),
    }


def run_scaling(
    targets: list[tuple[Target, Target]], rng: random.Random, *, rounds: int, requests: int, clients: int
) -> dict[str, Any]:
    """Single intake from `clients` concurrent connections to 1 gunicorn worker, then to 2, alternated, for the
    project and for the floor (what the machine itself allows: on 2 cores the client and PostgreSQL share them)."""
    out: dict[str, Any] = {"clients": clients, "requests": requests}
    for number in range(1, rounds + 1):
        cases = [case_body(rng, "") for _ in range(requests)]
        for one, two in targets:
            rates = []
            for target, tag in ((one, "w1"), (two, "w2")):
                # The same payloads with fresh ids: the 1- and 2-worker servers of a target share its database.
                bodies = [
                    json.dumps({**case, "external_id": f"scale{number}-{tag}-{i:07d}"}).encode()
                    for i, case in enumerate(cases)
                ]
                rates.append(run_single(target, bodies, clients=clients, quiet=True).summary["requests_per_s"])
            entry = out.setdefault(one.name, {"rounds": []})
            entry["rounds"].append(
                {"one_worker_rps": rates[0], "two_workers_rps": rates[1], "ratio": ratio(rates[1], rates[0])}
            )
            print(
                f"  scaling round {number} ({one.name}): 1 worker {rates[0]:.0f} req/s, 2 workers {rates[1]:.0f} req/s"
                f" = {rates[1] / rates[0]:.2f}x",
                flush=True,
            )
    for one, _ in targets:
        entry = out[one.name]
        entry["median_ratio"] = round(statistics.median(r["ratio"] for r in entry["rounds"]), 3)
    return out
