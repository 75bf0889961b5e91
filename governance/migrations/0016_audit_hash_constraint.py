"""The audit event's hash stays unique through a named constraint instead of `unique=True`: on PostgreSQL the field
option also made a `varchar_pattern_ops` index that no query reads and every appended event wrote into. SQLite
rebuilds the table to alter the field, which drops its triggers: they are put back."""

from django.db import migrations, models

from governance import append_only

TABLE = "governance_auditevent"


def add_triggers(apps, schema_editor):
    append_only.run(schema_editor, append_only.create_statements(schema_editor.connection.vendor, TABLE))


class Migration(migrations.Migration):
    dependencies = [("governance", "0015_category_pause_incident")]

    operations = [
        migrations.AlterField(model_name="auditevent", name="hash", field=models.CharField(max_length=64)),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("hash",), name="governance_auditevent_hash_unique"),
        ),
        migrations.RunPython(add_triggers, migrations.RunPython.noop),
    ]
