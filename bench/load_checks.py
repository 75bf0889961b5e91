"""bench/load.py's checks once the traffic ended: the RQ queue drained with no failed job, every submitted
case stored exactly once, the decisions the client saw equal the Decision rows, `manage.py verify_audit`, no
deadlock, and the gunicorn and RQ logs' errors grouped into condensed tracebacks.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import ROOT

DRAIN_SECONDS = 120.0


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
        # One pass over each table (a count per case, joined), not a count per case: with the statistics of a
        # table that grew during the run, a correlated count is planned as a scan of every routed event per case.
        cursor.execute(
            "SELECT count(*) FROM cases_case c LEFT JOIN (SELECT case_id, count(*) AS n FROM governance_auditevent "
            "WHERE kind = 'case.routed' GROUP BY case_id) e ON e.case_id = c.id WHERE coalesce(e.n, 0) <> 1"
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
