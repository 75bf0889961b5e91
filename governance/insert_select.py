"""INSERT ... SELECT, which the ORM lacks: rows copied or derived inside the database, never loaded into Python.

Used where one statement writes a row per row of a selection: the history rows of cases just stored or just moved
(`governance.history.history_for_rows`), the SLA breaches of a sweep's overdue cases (`cases.services.sla`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models


def insert_select(
    model: type[models.Model],
    fields: Sequence[str],
    selection: models.QuerySet[Any],
    *,
    constants: Sequence[Any] = (),
    ignore_conflicts: bool = False,
) -> int:
    """Insert into `model` one row per row of `selection` (a `values_list` queryset) in one statement; returns the
    number of rows written.

    `fields` names the model's fields to fill, in order: first those the selection's columns fill, then those the
    `constants` fill (the same value on every row, prepared by its field as a save would). `ignore_conflicts`
    leaves a row that would break a unique constraint unwritten (ON CONFLICT DO NOTHING), as `bulk_create` does.
    """
    meta = model._meta
    targets: list[models.Field[Any, Any]] = []
    for name in fields:
        target = meta.get_field(name)
        if not isinstance(target, models.Field):
            raise TypeError(f"insert_select fills fields, and {name!r} of {meta.label} is a relation's other side")
        targets.append(target)
    connection = connections[selection.db]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(target.column)) for target in targets)
    select_sql, select_params = selection.order_by().query.sql_with_params()
    constant_fields = targets[len(targets) - len(constants) :]
    prepared = [
        target.get_db_prep_save(value, connection) for target, value in zip(constant_fields, constants, strict=True)
    ]
    placeholders = "".join(", %s" for _ in prepared)
    # "WHERE 1 = 1": SQLite needs a WHERE in an INSERT ... SELECT that has an ON CONFLICT clause.
    conflict = " WHERE 1 = 1 ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT src.*{placeholders} FROM ({select_sql}) src{conflict}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*prepared, *select_params])  # in the order their placeholders appear
        return int(cursor.rowcount)
