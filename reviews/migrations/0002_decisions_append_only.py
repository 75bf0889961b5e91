"""Decisions are append-only: the database refuses UPDATE and DELETE on them."""

from django.db import migrations

from governance import append_only

TABLE = "reviews_decision"


def add_triggers(apps, schema_editor):
    append_only.run(schema_editor, append_only.create_statements(schema_editor.connection.vendor, TABLE))


def drop_triggers(apps, schema_editor):
    append_only.run(schema_editor, append_only.drop_statements(schema_editor.connection.vendor, TABLE))


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
