"""Where bench/sweep.py's sweep spends its time: each recorded statement attributed to a step of the sweep
by its SQL (`PHASES`), the time by phase (SQL, and the Python before each statement), by statement shape and
the slowest statements; and EXPLAIN ANALYZE of the overdue selection and of a queue's warning condition.
"""

from __future__ import annotations

import re
from typing import Any

from common_measure import QueryLog, explain_queryset, sql_shape
from sweep_fixture import Fixture

TOP_STATEMENTS = 8


# --- Where the time goes --------------------------------------------------------------------------------------


# The sweep's steps, recognised by their SQL (first match wins); a statement's Python lead-in counts with it.
PHASES: tuple[tuple[str, str], ...] = (
    ("load queues", r'FROM "cases_queue"'),
    ("warn: UPDATE per queue", r'^UPDATE "cases_case" SET "sla_warned_at"'),
    ("overdue selection (FOR UPDATE SKIP LOCKED)", r"SKIP LOCKED"),
    ("system user", r'"auth_user"\."username" =|^INSERT INTO "auth_user"|^UPDATE "auth_user" SET "password"'),
    # The status is a CASE (open cases take the target's status, audits keep theirs), then the queue.
    ("move: UPDATE of the overdue cases", r'^UPDATE "cases_case" SET ("status" = (%s|CASE .*? END), )?"queue_id"'),
    ("SlaBreach bulk insert", r'^INSERT INTO "cases_slabreach"'),
    ("load moved cases (for history)", r'^SELECT .* FROM "cases_case" WHERE "cases_case"\."id" IN'),
    ("history bulk insert", r'^INSERT INTO "cases_historicalcase"'),
    ("audit events (record_many)", r'"governance_audit(event|chainhead)"'),
    ("webhook deliveries", r'"governance_webhook'),
    ("notifications (who works the queue, notices)", r"guardian_|auth_|django_content_type|_notification"),
    ("category of a next queue (on_commit notice)", r'FROM "governance_category"'),
    ("savepoints", r"SAVEPOINT"),
)


def phase_of(sql: str) -> str:
    for name, pattern in PHASES:
        if re.search(pattern, sql):
            return name
    return "other"


def breakdown(log: QueryLog, seconds: float) -> dict[str, Any]:
    """Time by phase (SQL, and the Python before each statement), by statement shape, and the slowest ones, over
    the `seconds` from `log.t0`."""
    phases: dict[str, dict[str, float]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    previous_end = log.t0
    statements: list[dict[str, Any]] = []
    for e in log.entries:
        sql_s, python_s = e.seconds, max(0.0, e.start - previous_end)
        previous_end = e.end
        name = phase_of(e.sql)
        p = phases.setdefault(name, {"statements": 0, "sql_ms": 0.0, "python_before_ms": 0.0})
        p["statements"] += 1
        p["sql_ms"] += sql_s * 1000
        p["python_before_ms"] += python_s * 1000
        shape = sql_shape(e.sql)
        s = shapes.setdefault(shape, {"count": 0, "ms": 0.0, "phase": name})
        s["count"] += 1
        s["ms"] += sql_s * 1000
        statements.append(
            {
                "ms": round(sql_s * 1000, 2),
                "python_before_ms": round(python_s * 1000, 2),
                "phase": name,
                "rows_in_params": count_params(e.params),
                "sql": shape,
            }
        )
    after = max(0.0, log.t0 + seconds - previous_end)
    if after > 0:
        phases["Python after the last statement (on_commit, result)"] = {
            "statements": 0,
            "sql_ms": 0.0,
            "python_before_ms": after * 1000,
        }
    sql_total = log.seconds
    return {
        "statements": len(log.entries),
        "sql_ms": round(sql_total * 1000, 1),
        "python_ms": round((seconds - sql_total) * 1000, 1),
        "phases": {
            k: {
                "statements": v["statements"],
                "sql_ms": round(v["sql_ms"], 1),
                "python_before_ms": round(v["python_before_ms"], 1),
                "total_ms": round(v["sql_ms"] + v["python_before_ms"], 1),
            }
            for k, v in phases.items()
        },
        "by_shape": sorted(
            ({"count": v["count"], "ms": round(v["ms"], 1), "phase": v["phase"], "sql": k} for k, v in shapes.items()),
            key=lambda s: -s["ms"],
        ),
        "slowest": sorted(statements, key=lambda s: -s["ms"])[:TOP_STATEMENTS],
    }


def count_params(params: Any) -> int:
    return len(params) if isinstance(params, list | tuple) else 0


def explain_before(fx: Fixture) -> list[dict[str, str]]:
    """The overdue selection as the sweep runs it, and the warning condition of the biggest queue."""
    from django.utils import timezone

    from cases.models import Case, Queue
    from cases.services.sla import overdue_unheld

    now = timezone.now()
    overdue = overdue_unheld(now).select_for_update(skip_locked=True, of=("self",))
    overdue = overdue.values("id", "queue_id", "due_at", "status", "audit_status")
    biggest = Queue.objects.get(pk=fx.queues["quick"][0])
    return [
        {"name": "overdue selection", **explain_queryset(overdue)},
        {
            "name": f"warning condition of {biggest.slug} (as a SELECT; the sweep runs it as an UPDATE)",
            **explain_queryset(Case.objects.to_warn_in(biggest, now).values("id")),
        },
    ]
