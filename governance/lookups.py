"""Lookups the ORM lacks, each portable: a quick form on PostgreSQL, Django's own everywhere else (SQLite, tests)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import In
from django.db.models.sql.compiler import SQLCompiler


class InIds(In):
    """`column IN (ids)` for a long list of ids, used as an expression: `Case.objects.filter(InIds(F("pk"), ids))`.

    Django's IN sends one parameter per value: 10,000 ids (an SLA sweep's moves) are 10,000 values to prepare,
    placeholders to parse and literals to quote, in Python, for every statement that names them. On PostgreSQL
    this is `column = ANY(%s::bigint[])` with the list as one array parameter instead; the rows are the same.
    """

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        values = [value for value in self.rhs if value is not None]
        if not values:
            raise EmptyResultSet
        array_type = f"{self.lhs.output_field.cast_db_type(connection)}[]"
        return f"{lhs_sql} = ANY(%s::{array_type})", (*lhs_params, values)
