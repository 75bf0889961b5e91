"""Give the categories that existed before alert rules their default rules (new ones get them when created)."""

from django.db import migrations

from metrics.services.alerts import DEFAULT_RULES


def create_defaults(apps, schema_editor):
    category_model = apps.get_model("governance", "Category")
    rule_model = apps.get_model("metrics", "AlertRule")
    for category in category_model.objects.all():
        for kind, (threshold, hours, minimum) in DEFAULT_RULES.items():
            rule_model.objects.get_or_create(
                category=category,
                kind=kind,
                defaults={"threshold": threshold, "window_hours": hours, "min_count": minimum},
            )


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_alerts")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
