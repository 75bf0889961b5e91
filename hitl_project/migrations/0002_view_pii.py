"""Escalation managers see case inputs as submitted (`cases.view_pii`); every other role sees the redacted view."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE = "Escalation Manager"
PERMISSION = ("cases", "view_pii")


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations run; make sure this one exists now.
    cases_config = apps.get_app_config("cases")
    cases_config.models_module = True
    create_permissions(cases_config, apps=apps, verbosity=0)
    cases_config.models_module = None
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=ROLE)
    permission = apps.get_model("auth", "Permission").objects.get(
        content_type__app_label=PERMISSION[0], codename=PERMISSION[1]
    )
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=ROLE).first()
    if group is not None:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label=PERMISSION[0], codename=PERMISSION[1]
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("hitl_project", "0001_roles"),
        ("cases", "0004_sla_and_pii"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
