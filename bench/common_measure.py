"""How the benchmarks measure where the time goes: EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back,
nearest-rank percentiles and latency summaries, cProfile text with short paths, and an execute wrapper
recording every SQL statement with its timing (`QueryLog`, grouped by statement shape).
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import re
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common import ROOT

if TYPE_CHECKING:
    from django.db.models import QuerySet

# --- Reading plans -------------------------------------------------------------------------------------------


def explain(sql: str, params: Any = None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction rolled back (the statement may lock rows, as claim-next's
    candidates and the sweep's overdue selection do)."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(r[0] for r in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def explain_queryset(queryset: QuerySet[Any]) -> dict[str, str]:
    """The statement the queryset runs (parameters inlined, for reading) and its plan."""
    from django.db import connection, transaction

    with transaction.atomic():  # Django compiles FOR UPDATE only inside one
        sql, params = queryset.query.sql_with_params()
    operations: Any = connection.ops  # compose_sql is PostgreSQL's, not in the base class the stubs know
    return {"sql": operations.compose_sql(sql, params), "plan": explain(sql, params)}


# --- Measurements ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-pct * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def latency_summary(
    ms: Iterable[float], percentiles: Iterable[int] = (50, 95, 99), digits: int = 2
) -> dict[str, float]:
    """Count, nearest-rank percentiles, max and mean of durations in milliseconds (at least one)."""
    values = sorted(ms)
    return {
        "count": len(values),
        **{f"p{pct}_ms": round(percentile(values, pct), digits) for pct in percentiles},
        "max_ms": round(values[-1], digits),
        "mean_ms": round(sum(values) / len(values), digits),
    }


def profile_text(profiler: cProfile.Profile, sort: str, limit: int) -> str:
    """The profile's top `limit` functions by `sort`, with paths relative to the project or to site-packages: short,
    and still saying which views.py is meant."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(limit)
    text = out.getvalue()
    for prefix in sorted({sysconfig.get_path("purelib"), sysconfig.get_path("stdlib"), str(ROOT)}, key=len)[::-1]:
        text = text.replace(prefix + os.sep, "")
    return text


# --- Where the time goes: SQL statements ----------------------------------------------------------------------

_SQL_PARAMS = re.compile(r"%s(?:, %s)+")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')


def sql_shape(sql: str) -> str:
    """The statement with its parameter lists and savepoint names collapsed, so repeats group together."""
    shape = _SAVEPOINT.sub('"<savepoint>"', _SQL_PARAMS.sub("%s, ...", sql))
    return re.sub(r"\s+", " ", shape)[:220]


@dataclass(frozen=True)
class Statement:
    """One statement executed: its SQL and parameters, and when it started and ended (time.perf_counter)."""

    sql: str
    params: Any
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class QueryLog:
    """An execute wrapper recording every statement and the time spent executing it: the round trip plus
    psycopg's adaptation. Transaction control (BEGIN, COMMIT) is not a statement and is not recorded. `t0` (when
    the log was made, or set by the caller) is where a timeline of the statements starts."""

    def __init__(self) -> None:
        self.entries: list[Statement] = []
        self.t0 = time.perf_counter()

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.entries.append(Statement(sql=sql, params=params, start=start, end=time.perf_counter()))

    @property
    def seconds(self) -> float:
        return sum(statement.seconds for statement in self.entries)

    def report(self) -> dict[str, Any]:
        groups: dict[str, list[float]] = {}
        for statement in self.entries:
            groups.setdefault(sql_shape(statement.sql), []).append(statement.seconds)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), -sum(kv[1])))
        return {
            "statements": len(self.entries),
            "sql_ms": round(self.seconds * 1000, 2),
            "by_shape": [{"count": len(t), "ms": round(sum(t) * 1000, 2), "sql": shape} for shape, t in ranked],
        }


@contextlib.contextmanager
def logged_queries() -> Iterator[QueryLog]:
    from django.db import connection

    log = QueryLog()
    with connection.execute_wrapper(log):
        yield log
