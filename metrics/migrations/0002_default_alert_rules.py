"""Give the categories that existed before alert rules their default rules (new ones get them when created)."""

from django.db import migrations

# The alert rules' DEFAULT_RULES (metrics.alerts when this migration was written) as they were then, frozen here: a
# migration must do the same thing forever, and the live defaults may change or move (a new category takes them
# from there, not from here).
# kind -> (threshold, window hours, minimum count)
DEFAULT_RULES = {
    "override_rate": (0.30, 24, 20),
    "escalation_spike": (0.20, 1, 20),
    "resolution_time": (2.0, 24, 20),
    "confidence_drift": (0.20, 24, 100),
    "rubber_stamping": (0.98, 24, 50),
}


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
