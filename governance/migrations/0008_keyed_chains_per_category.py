"""One audit chain per category, each with its own head; TRUNCATE refused on the audit log; heads that only move
forward. (Events already written are re-sealed into their categories' chains by reviews 0005, which binds
decisions too.)"""

from django.core.management.color import no_style
from django.db import migrations, models

from governance import append_only

TABLE = "governance_auditevent"


def add_triggers(apps, schema_editor):
    connection = schema_editor.connection
    vendor = connection.vendor
    # 0002 made the first head with an explicit id, which PostgreSQL's id sequence never saw: move it past it,
    # or the next head created would collide with it.
    style = no_style()
    head_model = apps.get_model("governance", "AuditChainHead")
    for statement in connection.ops.sequence_reset_sql(style, [head_model]):
        schema_editor.execute(statement, params=None)
    append_only.run(schema_editor, append_only.create_statements(vendor, TABLE))
    append_only.run(schema_editor, append_only.head_create_statements(vendor))


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    append_only.run(schema_editor, append_only.head_drop_statements(vendor))


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_webhooks")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="chain",
            field=models.CharField(
                default="", help_text="The category's slug; empty for the global chain.", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="auditchainhead",
            name="chain",
            field=models.CharField(help_text="The category's slug; empty for the global chain.", max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(editable=False, help_text="The row's place in its category's chain."),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="category_slug",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["id"]}),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("category_slug", "seq"), name="governance_auditevent_chain_seq_unique"
            ),
        ),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
