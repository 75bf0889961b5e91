"""The audit chain's head row and the triggers that make the audit log append-only."""

from django.db import migrations

from governance import append_only

TABLE = "governance_auditevent"
GENESIS_HASH = "0" * 64


def create_head(apps, schema_editor):
    apps.get_model("governance", "AuditChainHead").objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


def add_triggers(apps, schema_editor):
    append_only.run(schema_editor, append_only.create_statements(schema_editor.connection.vendor, TABLE))


def drop_triggers(apps, schema_editor):
    append_only.run(schema_editor, append_only.drop_statements(schema_editor.connection.vendor, TABLE))


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
