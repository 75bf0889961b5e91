"""Create the five role groups with their model permissions (names exactly as in DESIGN.md)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The roles as they were when this migration was written: later permissions are added by
# hitl_project.roles.ensure_roles after every migrate (their models do not exist yet at this point).
ROLE_PERMISSIONS = {
    "Reviewer": [
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
        "reviews.add_decision",
    ],
    "Escalation Manager": [
        "cases.view_case",
        "cases.change_case",
        "cases.view_queue",
        "reviews.view_decision",
        "reviews.add_decision",
    ],
    "Product Owner": [
        "governance.add_category",
        "governance.view_policy",
        "governance.change_policy",
        "governance.view_modelversion",
        "cases.view_queue",
        "cases.change_queue",
        "cases.view_case",
        "reviews.view_decision",
    ],
    "Model Steward": [
        "governance.view_category",
        "governance.view_policy",
        "governance.view_modelversion",
        "governance.add_modelversion",
        "governance.change_modelversion",
        "governance.view_auditevent",
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
    ],
    "Data Curator": [
        "governance.view_category",
        "governance.view_policy",
        "governance.view_auditevent",
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
    ],
}



def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations run; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("governance", "0002_audit_chain"),
        ("cases", "0001_initial"),
        ("reviews", "0002_decisions_append_only"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
