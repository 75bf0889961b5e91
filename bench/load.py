"""Load test: mixed traffic for minutes on gunicorn with several workers and an RQ worker, and nothing lost.

Against DESIGN.md "Budgets": "Memory of a web process stays flat over 100,000 requests; a 10-minute load test on
gunicorn with several workers and an RQ worker ends with zero 5xx and every submitted case stored exactly once",
and "2 web processes take more than 1.6x the intake of 1".

On a scratch PostgreSQL database it creates (``bench_load_...``, dropped at the end, also on Ctrl-C):

1. The fixture, through the services: two live categories (exception pattern; sensitive labels and rules, a
   high-value limit, an 80 % ramp, 5 % audits) with their five queues and an active model version; the
   integration user (``governance.submit_case`` on both, an API token); a reviewer per locust user (Reviewer
   group, ``cases.work_queue`` on the quick, full and audit queues) and an escalation manager per locust user
   (the escalation and expert queues), each with a token.
2. gunicorn (``--workers``, sync workers, as production serves) and ``manage.py rqworker default`` on a real Redis
   (``--redis-url``, db 9 by default; refused if not empty, emptied at the end).
3. The mixed phase, ``--minutes`` long: ``--users`` locust users (bench/load_traffic.py, headless, in a process of
   its own: gevent's monkey-patching never meets Django), 6:3:1 integrations, reviewers and managers. Intake of
   single cases (most), small bulk batches, repeats of cases already sent and concurrent duplicates; claim-next
   and decisions (approve, correct, reject with a reason, escalate, release), batch approval, audits; reads of
   queues, a queue's cases, a case, metrics; and the races (claiming a case another holds, deciding a final
   one: 409). Every response is counted by request and status; every external id submitted is kept.
   The web workers' RSS (psutil; VmRSS) is sampled at the start, every few seconds, and at the end;
   flat means a worker grew by at most 16 MiB from the sample after a tenth of the requests to the end.
   ``--min-requests 100000`` goes on past the minutes until that many requests were answered (the memory budget's
   length, which a 2-core machine shared with other work may not reach in 10 minutes).
4. The intake phase: gunicorn restarted with 1 worker, then 2, ``--scale-rounds`` times alternately, each driven
   by the same ``--scale-users`` users posting new single cases back to back: cases created per second after a
   warm-up, and the ratio of the medians (2 workers over 1).
5. The checks, once the RQ queue has drained: every submitted case (all phases) stored exactly once and no case
   that was not submitted; one 201 (or bulk "created") per case on the client side; one ``case.routed`` audit
   event per case; the human decisions the client saw succeed equal the Decision rows; ``manage.py verify_audit``;
   no failed RQ job; no deadlock in PostgreSQL's statistics of the scratch database; the gunicorn and RQ logs'
   tracebacks, grouped and printed condensed after the table.

The API throttle is raised for the run (``HITL_THROTTLE_USER``): one integration account sends every intake, and the
load, not the limit, is what is measured. The audit key and anchor log are the run's own (a temporary file).

Needs locust: ``.venv/bin/pip install -e ".[bench]"``. Run (PostgreSQL, trust auth; the database in the URL is not
used)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/load.py
    DATABASE_URL=... .venv/bin/python bench/load.py --minutes 1 --scale-seconds 20 --tag short
    DATABASE_URL=... .venv/bin/python bench/load.py --min-requests 100000 --scale-rounds 3

Results: a table (PASS/MISS per budget) on stdout and ``bench/results/load-<date>.json`` (``--tag`` names it
``load-<tag>-<date>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from common import (
    ROOT,
    BenchError,
    add_run_options,
    bench_parser,
    configure_django,
    migrate,
    print_rows,
    release,
    row,
    run_main,
    run_record,
    save_results,
    scratch_databases,
    verdict,
)
from common_data import SENSITIVE_POLICY, create_bench_category, create_integration_user, create_reviewer
from common_server import Server, rss_mib, worker_pids

DB_PREFIX = "bench_load_"
CATEGORY_SLUGS = ("bench-load-a", "bench-load-b")
TRAFFIC = ROOT / "bench" / "load_traffic.py"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DRAIN_SECONDS = 120.0

# DESIGN.md "Budgets".
TARGET_REQUESTS = 100_000
TARGET_SCALING = 1.6
# Flat: from the first sample after a tenth of the requests (caches warm) to the end, a worker grows by at most
# this many MiB (a leak of a few KiB a request shows at 100,000 requests; allocator noise stays under it).
FLAT_SLACK_MIB = 16.0


# --- The fixture ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    categories: list[dict[str, Any]]  # slug, queues (kind -> slug)
    tokens: dict[str, Any]  # integration: [token]; reviewer, manager: [{username, token}]


def create_fixture(people: int) -> Fixture:
    """Two categories, the integration user, and `people` reviewers and as many escalation managers (a locust user
    each: two users sharing an account would be handed the same case by claim-next, which gives you your own
    claimed case first)."""
    from django.contrib.auth.models import Group, User
    from guardian.shortcuts import assign_perm
    from rest_framework.authtoken.models import Token

    from governance.permissions import ESCALATION_MANAGER, REVIEWER

    policy = {**SENSITIVE_POLICY, "high_value_amount": "5000.00"}
    benches = [create_bench_category(slug=slug, name=f"Bench {slug}", policy=policy) for slug in CATEGORY_SLUGS]
    integration = create_integration_user()
    for bench in benches:
        assign_perm("governance.submit_case", integration, bench.category)

    def people_of(role: str, prefix: str, kinds: tuple[str, ...]) -> list[dict[str, str]]:
        group = Group.objects.get(name=role)
        queues = [bench.queues[kind] for bench in benches for kind in kinds]
        made: list[User] = [create_reviewer(f"{prefix}-{i:03d}", queues=queues, groups=[group]) for i in range(people)]
        return [{"username": u.username, "token": Token.objects.create(user=u).key} for u in made]

    return Fixture(
        categories=[
            {"slug": bench.category.slug, "queues": {kind: q.slug for kind, q in bench.queues.items()}}
            for bench in benches
        ],
        tokens={
            "integration": [Token.objects.create(user=integration).key],
            "reviewer": people_of(REVIEWER, "bench-load-reviewer", ("quick", "full", "audit")),
            "manager": people_of(ESCALATION_MANAGER, "bench-load-manager", ("escalation", "expert")),
        },
    )


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


# --- The checks ------------------------------------------------------------------------------------------------


def wait_for_rq(redis_url: str) -> dict[str, Any]:
    """Wait (up to DRAIN_SECONDS) until the default queue is empty and no job is running; the worker's counts and
    the failed jobs."""
    import django_rq
    from rq import Worker
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    queue = django_rq.get_queue("default")
    started = StartedJobRegistry(queue=queue)
    deadline = time.monotonic() + DRAIN_SECONDS
    while (queue.count or started.count) and time.monotonic() < deadline:
        time.sleep(0.5)
    failed = FailedJobRegistry(queue=queue)
    failures = []
    for job_id in failed.get_job_ids()[:5]:
        job = queue.fetch_job(job_id)
        result = job.latest_result() if job is not None else None
        if job is not None:
            failures.append({"func": job.func_name, "exc": ((result and result.exc_string) or "")[-800:]})
    workers = Worker.all(connection=queue.connection)
    return {
        "drained": not (queue.count or started.count),
        "left_in_queue": queue.count,
        "succeeded": sum(w.successful_job_count for w in workers),
        "failed": failed.count,
        "failures": failures,
        "redis": redis_url,
    }


def read_ids(paths: list[str]) -> set[tuple[str, str]]:
    ids: set[tuple[str, str]] = set()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            slug, external_id = line.split("\t")
            ids.add((slug, external_id))
    return ids


def check_cases(submitted: set[tuple[str, str]]) -> dict[str, Any]:
    """Every submitted case stored once, nothing else stored, and one case.routed event per case."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g.slug, c.external_id, count(*) FROM cases_case c "
            "JOIN governance_category g ON g.id = c.category_id GROUP BY g.slug, c.external_id"
        )
        stored = {(slug, external_id): n for slug, external_id, n in cursor.fetchall()}
        cursor.execute(
            "SELECT count(*) FROM cases_case c WHERE (SELECT count(*) FROM governance_auditevent e "
            "WHERE e.case_id = c.id AND e.kind = 'case.routed') <> 1"
        )
        (not_one_routed,) = cursor.fetchone()
    missing = submitted - stored.keys()
    extra = stored.keys() - submitted
    twice = [key for key, n in stored.items() if n > 1]
    return {
        "submitted": len(submitted),
        "stored": sum(stored.values()),
        "missing": len(missing),
        "extra": len(extra),
        "stored_more_than_once": len(twice),
        "examples": {"missing": sorted(missing)[:5], "extra": sorted(extra)[:5], "twice": sorted(twice)[:5]},
        "cases_without_exactly_one_routed_event": not_one_routed,
        "exactly_once": not missing and not extra and not twice,
    }


def check_decisions(client: Counter[str]) -> dict[str, Any]:
    """The human decisions stored, by action, against those the client saw succeed (a batch approval is an approve
    per case)."""
    from django.db.models import Count

    from reviews.models import Decision

    stored = dict(Decision.objects.filter(actor__isnull=False).values_list("action").annotate(n=Count("id")))
    seen: Counter[str] = Counter()
    for action, n in client.items():
        seen[action.removesuffix(" (batch)")] += n
    return {
        "stored": dict(sorted(stored.items())),
        "client": dict(sorted(seen.items())),
        "by_the_system": Decision.objects.filter(actor__isnull=True).count(),
        "match": stored == dict(seen),
    }


def check_database() -> dict[str, Any]:
    """What the run left in the categories (an automatic pause opens an incident), and the deadlocks PostgreSQL
    detected in the scratch database (each one ended a transaction with an error)."""
    from django.db import connection

    from governance.models import Category, Incident

    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        (deadlocks,) = cursor.fetchone()
    return {
        "deadlocks": deadlocks,
        "categories": {c.slug: {"paused": c.paused, "paused_reason": c.paused_reason} for c in Category.objects.all()},
        "incidents": Incident.objects.count(),
    }


def verify_audit(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return {"ok": result.returncode == 0, "output": (result.stdout + result.stderr).strip()[-2000:]}


LOG_TRIGGERS = ("Internal Server Error", "Traceback", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT")
# Django's one-line warnings of a 4xx (a 409 of a lost race is one): they end a traceback's block, nothing more.
CHAINED = ("The above exception", "During handling of the above exception")
LOG_RECORD = re.compile(r"^\[?\d{2,4}[-:]\d\d")  # a timestamp: gunicorn's and RQ's records start with one
LOG_WARNING = re.compile(r"^(Conflict|Not Found|Bad Request|Forbidden|Unauthorized|Gone|Too Many Requests)\b.*: /")


def log_problems(path: Path, source: str) -> list[dict[str, Any]]:
    """The tracebacks and errors of a log (Django logs a 500's traceback in gunicorn's), grouped by their last
    exception line: how often, and the first one in full and condensed (without the File lines and their code)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        # A traceback continues the block it follows when chained ("The above exception ...") or announced
        # (Django's "Internal Server Error: ..."); else it is a problem of its own.
        previous = next((ln for ln in reversed(current or []) if ln.strip()), "")
        continues = line.startswith("Traceback") and (previous.startswith(CHAINED) or current == [previous])
        if any(t in line[:100] for t in LOG_TRIGGERS) and not continues:
            current = [line]
            blocks.append(current)
        elif current is not None and (LOG_WARNING.match(line) or LOG_RECORD.match(line) or len(current) > 400):
            current = None  # the next record: the block is complete
        elif current is not None:
            current.append(line)
    groups: dict[str, dict[str, Any]] = {}
    for block in blocks:
        # The project's own frames stay: they say where; the libraries' frames and every code line go.
        condensed = [
            ln
            for ln in block
            if ln.strip()
            and not ln.startswith("    ")
            and (not ln.startswith("  File ") or (str(ROOT) in ln and "/.venv/" not in ln))
        ]
        errors = [ln for ln in condensed if re.match(r"^[\w.]+(Error|Exception|Detected|Timeout)\b", ln)]
        frames = [ln.strip() for ln in condensed if ln.startswith("  File ")]
        error = errors[-1] if errors else condensed[0]
        where = frames[0] if frames else ""  # the outermost project frame: the request or job that failed
        group = groups.setdefault(
            f"{error} {where}",
            {"source": source, "error": error, "where": where, "count": 0, "condensed": "", "full": ""},
        )
        group["count"] += 1
        if not group["full"]:
            group["condensed"] = "\n".join(condensed[:40])
            group["full"] = "\n".join(block[:300])
    return list(groups.values())


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


# --- Report ----------------------------------------------------------------------------------------------------


def table_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    mixed, checks = results["mixed"], results["checks"]
    statuses = Counter({int(k): v for k, v in results["statuses"].items()})
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    no_answer = statuses.get(0, 0)
    cases, decisions, memory = checks["cases"], checks["decisions"], mixed["memory"]
    idem = mixed["checks"]
    bad_idem = sum(n for k, n in idem.items() if k.endswith("bad"))
    rows = [
        row(
            "mixed phase: requests",
            f"{mixed['requests']:,} in {mixed['seconds'] / 60:.1f} min ({mixed['requests_per_s']:.0f}/s, "
            f"{mixed['workers']} workers, {mixed['users']} users)",
            f">= {TARGET_REQUESTS:,} (10 min)",
            verdict(mixed["requests"] >= TARGET_REQUESTS),
        ),
        row("5xx responses (all phases)", str(server_errors), "0", verdict(server_errors == 0)),
        row(
            "unexpected answers (4xx, no answer, broken promise)",
            f"{results['unexpected']} (no answer: {no_answer})",
            "0",
            verdict(results["unexpected"] == 0),
        ),
        row(
            "submitted cases stored exactly once",
            f"{cases['submitted']:,} submitted, {cases['stored']:,} stored; missing {cases['missing']}, "
            f"extra {cases['extra']}, twice {cases['stored_more_than_once']}",
            "all once, nothing else",
            verdict(cases["exactly_once"]),
        ),
        row(
            "one 201/created per case (client)",
            f"{results['created_responses']:,} for {cases['submitted']:,} cases; twice: {results['created_twice']}",
            "= cases",
            verdict(results["created_responses"] == cases["submitted"] and not results["created_twice"]),
        ),
        row(
            "idempotency (repeats, bulk repeats, concurrent pairs)",
            ", ".join(f"{k} {n}" for k, n in idem.items()) or "none",
            "no bad",
            verdict(bad_idem == 0),
        ),
        row(
            "one case.routed audit event per case",
            f"{cases['cases_without_exactly_one_routed_event']} cases without exactly one",
            "0",
            verdict(cases["cases_without_exactly_one_routed_event"] == 0),
        ),
        row(
            "human decisions stored = decisions answered 200",
            f"{sum(decisions['stored'].values()):,} stored, {sum(decisions['client'].values()):,} answered",
            "equal, per action",
            verdict(decisions["match"]),
        ),
        row(
            "audit chain (manage.py verify_audit)",
            checks["verify_audit"]["output"].splitlines()[-1][:90] if checks["verify_audit"]["output"] else "",
            "OK",
            verdict(checks["verify_audit"]["ok"]),
        ),
        row(
            "deadlocks detected by PostgreSQL",
            str(checks["database"]["deadlocks"]),
            "0",
            verdict(checks["database"]["deadlocks"] == 0),
        ),
        row(
            "categories paused by the pause rule (info)",
            ", ".join(slug for slug, c in checks["database"]["categories"].items() if c["paused"]) or "none",
        ),
        row(
            "RQ jobs: succeeded / failed / left",
            f"{checks['rq']['succeeded']:,} / {checks['rq']['failed']} / {checks['rq']['left_in_queue']}",
            "0 failed, drained",
            verdict(checks["rq"]["failed"] == 0 and checks["rq"]["drained"]),
        ),
    ]
    for pid, w in memory["workers"].items():
        rows.append(
            row(
                f"web worker {pid} RSS: start / at {memory['baseline_at_requests']:,} req / end",
                f"{w['start_mib']} / {w['baseline_mib']} / {w['end_mib']} MiB ({w['growth_from_baseline_mib']:+} MiB)",
                f"flat (<= +{FLAT_SLACK_MIB:g} MiB)",
                verdict(w["growth_from_baseline_mib"] is not None and w["growth_from_baseline_mib"] <= FLAT_SLACK_MIB),
            )
        )
    if not memory["same_workers_throughout"]:
        rows.append(row("web workers: the same from start to end", "no (a worker was replaced)", "yes", "MISS"))
    latency = mixed["latency_ms"]
    for name in ("intake", "bulk", "queue next", "decide", "cases of a queue", "metrics"):
        if name in latency:
            lat = latency[name]
            rows.append(
                row(
                    f"mixed: {name} p50 / p95 / p99",
                    f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']} ms ({lat['count']:,})",
                )
            )
    scaling = results.get("scaling")
    if scaling:
        median = scaling["median_per_s"]
        rows.append(
            row(
                "intake, 1 worker (median)",
                f"{median['1_workers']:.1f} cases/s "
                f"({', '.join(str(v) for v in scaling['created_per_s']['1_workers'])})",
            )
        )
        rows.append(
            row(
                "intake, 2 workers (median)",
                f"{median['2_workers']:.1f} cases/s "
                f"({', '.join(str(v) for v in scaling['created_per_s']['2_workers'])})",
            )
        )
        ratio = scaling["ratio"]
        rows.append(
            row(
                "intake: 2 workers / 1 worker",
                f"{ratio:.2f}x" if ratio else "n/a",
                f"> {TARGET_SCALING:g}x",
                verdict(bool(ratio) and ratio > TARGET_SCALING),
            )
        )
    return rows


# --- Main ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the mixed phase (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers in the mixed phase (default 2)")
    parser.add_argument("--users", type=int, default=24, help="locust users in the mixed phase (default 24)")
    parser.add_argument(
        "--min-requests",
        type=int,
        default=0,
        help="go on past --minutes until this many requests were answered (e.g. 100000: the memory budget's length)",
    )
    parser.add_argument("--max-minutes", type=float, default=60.0, help="the limit of --min-requests (default 60)")
    parser.add_argument("--scale-users", type=int, default=8, help="users of the intake phase (default 8)")
    parser.add_argument(
        "--scale-seconds", type=float, default=60.0, help="measured seconds per intake run (default 60)"
    )
    parser.add_argument("--scale-warmup", type=float, default=5.0, help="warm-up seconds per intake run (default 5)")
    parser.add_argument("--scale-rounds", type=int, default=2, help="rounds of 1 then 2 workers (default 2; 0: none)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"the RQ Redis (default {DEFAULT_REDIS_URL})")
    parser.add_argument("--flush-redis", action="store_true", help="empty the Redis database first if it is not")
    parser.add_argument("--tag", default="", help="write bench/results/load-<tag>-<date>.json instead")
    add_run_options(
        parser,
        db_name=f"{DB_PREFIX}scratch",
        db_help=f"the scratch database (default {DB_PREFIX}scratch; must start with {DB_PREFIX})",
        results="load-<date>.json",
    )
    args = parser.parse_args(argv)
    if not args.db_name.startswith(DB_PREFIX):
        parser.error(f"--db-name must start with {DB_PREFIX}")
    if args.minutes <= 0 or args.workers < 2 or args.users < 3 or args.scale_users < 1 or args.scale_rounds < 0:
        parser.error("--minutes > 0, --workers >= 2, --users >= 3 (one of each kind), --scale-users >= 1")
    return args


def claim_redis(url: str, *, flush: bool) -> Any:
    """The run's Redis database: refused if it holds anything (another run's jobs would reach this database)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = client.dbsize()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {url} is not reachable: {exc}") from exc
    if keys and not flush:
        raise BenchError(f"Redis {url} holds {keys} keys: pass --flush-redis to empty it, or another --redis-url.")
    client.flushdb()
    return client


def run(args: argparse.Namespace) -> dict[str, Any]:
    (database,) = scratch_databases([args.db_name], replace=args.replace_db, postgres_only="gunicorn load")
    load_at_start = os.getloadavg()[0]
    redis_client = claim_redis(args.redis_url, flush=args.flush_redis)
    rq: RqWorker | None = None
    problems: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-load-") as tmp:
        work_dir = Path(tmp)
        try:
            database.create()
            print(f"Scratch database {database.name!r} created; migrating ...", flush=True)
            os.environ.update(
                REDIS_URL=args.redis_url,
                AUDIT_KEY=secrets.token_hex(32),
                AUDIT_ANCHOR_FILE=str(work_dir / "audit-anchors.jsonl"),
                HITL_THROTTLE_USER="10000000/minute",
            )
            env = configure_django(database.url)
            migrate()
            fixture = create_fixture(args.users)
            rq = RqWorker(env=env)
            rq.start()

            phases: list[dict[str, Any]] = []
            mixed = run_mixed(args, env, fixture, work_dir, problems, rq)
            phases.append(mixed)
            scaling = None
            if args.scale_rounds:
                scaling = run_scaling(args, env, fixture, work_dir, problems)
                phases.extend(scaling["runs"])

            print(
                "Checking: the RQ queue drained, every case stored once, the decisions, the audit chain ...", flush=True
            )
            rq_state = wait_for_rq(args.redis_url)
            problems.extend(log_problems(rq.log_path, "rqworker"))
            submitted = read_ids([phase["ids_file"] for phase in phases])
            checks = {
                "rq": rq_state,
                "cases": check_cases(submitted),
                "decisions": check_decisions(Counter(mixed["decisions"])),
                "verify_audit": verify_audit(env),
                "database": check_database(),
            }
            statuses = all_statuses(phases)
            results: dict[str, Any] = {
                **run_record(
                    "load",
                    database,
                    load_at_start,
                    server=f"gunicorn hitl_project.wsgi -w {args.workers} (sync workers)",
                    client="locust FastHttpUser, headless (bench/load_traffic.py)",
                    rq="manage.py rqworker default",
                ),
                "parameters": {k: v for k, v in vars(args).items() if k not in ("keep_db", "replace_db")},
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "unexpected": unexpected_total(phases),
                "created_responses": sum(phase["created_responses"] for phase in phases),
                "created_twice": sum(len(phase["created_twice"]) for phase in phases),
                "mixed": {k: v for k, v in mixed.items() if k != "ids_file"},
                "scaling": scaling,
                "checks": checks,
                "server_problems": problems,
            }
            if scaling:
                for run_ in scaling["runs"]:
                    run_.pop("ids_file", None)
                    run_.pop("latency_ms", None)
            rows = table_rows(results)
            print_rows(rows)
            print_problems(problems, [*mixed["unexpected"], *(u for r in phases[1:] for u in r["unexpected"])])
            save_results(f"load-{args.tag}" if args.tag else "load", results, rows, write=not args.no_write)
            return results
        finally:
            if rq is not None:
                rq.stop()
            redis_client.flushdb()
            release([database], keep=args.keep_db)


def print_problems(problems: list[dict[str, Any]], unexpected: list[dict[str, Any]]) -> None:
    """The logs' errors (condensed tracebacks) and the first unexpected answers, after the table."""
    for problem in problems:
        print(
            f"\n{problem['count']} x in the {problem['source']} log: {problem['error']}"
            f"{' (' + problem['where'] + ')' if problem['where'] else ''}\n{problem['condensed']}"
        )
    for answer in unexpected[:8]:
        body = " ".join(answer["body"].split())[:200]
        print(f"\nUnexpected answer to {answer['name']!r}: {answer['status']} {body}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(
        "load",
        lambda: run(args),
        interrupted="Interrupted; gunicorn, the RQ worker and the traffic were stopped (and the scratch database "
        "dropped unless --keep-db).",
    )


if __name__ == "__main__":
    sys.exit(main())
