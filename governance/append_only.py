"""Database triggers that make a table append-only: UPDATE and DELETE are refused by the database itself.

Used by the migrations of the audit log and of decisions, on SQLite and PostgreSQL alike. A row-level trigger
does not fire on TRUNCATE, which only a database owner can run (PostgreSQL's test teardown uses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION hitl_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


def create_statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            PG_FUNCTION,
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();",
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END;"
            for op in ("UPDATE", "DELETE")
        ]
    raise NotImplementedError(f"No append-only trigger for the {vendor} database; use PostgreSQL or SQLite.")


def drop_statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"]
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()};" for op in ("UPDATE", "DELETE")]
    raise NotImplementedError(vendor)


def run(schema_editor: BaseDatabaseSchemaEditor, statements: list[str]) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)  # None: no placeholders, so RAISE can use %
