"""Database triggers that hold what the code promises about the audit trail, on SQLite and PostgreSQL alike.

- **Append-only tables** (audit events, decisions): UPDATE, DELETE and TRUNCATE are refused by the database
  itself. PostgreSQL's row triggers do not fire on TRUNCATE, hence a statement trigger for it; SQLite has no
  TRUNCATE (its `DELETE FROM t` fires the DELETE trigger).
- **Chain heads** move only forward: an UPDATE that lowers a head's sequence, renames its chain or changes its
  hash without moving on is refused, and so are DELETE and TRUNCATE.

A database owner can still drop or disable triggers; what the audit chain's key and its anchors outside the
database prove then is in governance.events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

HEAD_TABLE = "governance_auditchainhead"

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION hitl_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""

PG_HEAD_FUNCTION = """
CREATE OR REPLACE FUNCTION hitl_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF NEW.chain <> OLD.chain OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'audit chain head % may only move forward: seq % -> % refused', OLD.chain, OLD.seq, NEW.seq;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def create_statements(vendor: str, table: str) -> list[str]:
    """The triggers that make `table` append-only."""
    if vendor == "postgresql":
        return [
            PG_FUNCTION,
            *drop_statements(vendor, table),
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION hitl_refuse_change();",
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
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
        ]
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()};" for op in ("UPDATE", "DELETE")]
    raise NotImplementedError(vendor)


def head_create_statements(vendor: str) -> list[str]:
    """The triggers that let the chain heads only move forward."""
    table = HEAD_TABLE
    if vendor == "postgresql":
        return [
            PG_FUNCTION,
            PG_HEAD_FUNCTION,
            *head_drop_statements(vendor),
            f"CREATE TRIGGER {table}_forward_only BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hitl_head_forward_only();",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION hitl_refuse_change();",
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_forward_only BEFORE UPDATE ON {table} "
            f"WHEN NEW.chain <> OLD.chain OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) "
            f"BEGIN SELECT RAISE(ABORT, 'audit chain head may only move forward'); END;",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
        ]
    raise NotImplementedError(f"No chain-head trigger for the {vendor} database; use PostgreSQL or SQLite.")


def head_drop_statements(vendor: str) -> list[str]:
    table = HEAD_TABLE
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_{name} ON {table};"
            for name in ("forward_only", "no_delete", "no_truncate")
        ]
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_{name};" for name in ("forward_only", "no_delete")]
    raise NotImplementedError(vendor)


def run(schema_editor: BaseDatabaseSchemaEditor, statements: list[str]) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)  # None: no placeholders, so RAISE can use %
