"""Percentiles computed by the database, so a KPI costs one query however many rows it reads.

PostgreSQL has `percentile_disc(p) WITHIN GROUP (ORDER BY x)`; SQLite (the laptop default) has no percentile, so
the same aggregate is registered on each SQLite connection as a small Python aggregate that SQLite runs inside
the query. Both answer the same value: the smallest x whose cumulative share reaches p (nearest rank), one of
the observed values, never an interpolation; NULLs are ignored.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, Expression, FloatField
from django.db.models.sql.compiler import SQLCompiler

SQLITE_FUNCTION = "hitl_percentile_disc"


class PercentileDisc(Aggregate):
    """The `percentile` (0 to 1) of `expression`, as one of its values (nearest rank)."""

    function = "percentile_disc"
    name = "PercentileDisc"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        if not 0 < percentile <= 1:
            raise ValueError("percentile must be in (0, 1]")
        # A float literal in the SQL: it is ours, never user input.
        super().__init__(expression, percentile=repr(float(percentile)), **extra)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            function=SQLITE_FUNCTION,
            template="%(function)s(%(expressions)s, %(percentile)s)",
            **extra_context,
        )

    def _resolve_output_field(self) -> Any:
        source = self.get_source_expressions()[0]
        return source.output_field if isinstance(source, Expression) else FloatField()


class _SqlitePercentileDisc:
    """SQLite's side of `PercentileDisc`: collects the group's values and picks the nearest rank."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.percentile = 0.5

    def step(self, value: Any, percentile: float) -> None:
        self.percentile = percentile
        if value is not None:
            self.values.append(value)

    def finalize(self) -> Any:
        if not self.values:
            return None
        self.values.sort()
        rank = max(math.ceil(self.percentile * len(self.values)) - 1, 0)
        return self.values[rank]


def register_sqlite_functions(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """On every new SQLite connection (Django's `connection_created`), add the percentile aggregate."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_FUNCTION, 2, _SqlitePercentileDisc)
