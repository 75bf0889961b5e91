"""The five roles of DESIGN.md and the model permissions each group holds.

Model permissions say what kind of work a role does; object permissions (guardian) say on which categories and
queues. A global `governance.view_category` opens every category, so only the cross-category roles have it.

`cases.view_pii` (case inputs as submitted; everyone else sees the redacted view) goes to escalation managers
alone: they decide the legal and high-risk cases, where who the customer is can matter, and only in the queues
granted to them. Data curators work across every category (a global `view_category`) on labels and exports, which
stay redacted (DESIGN.md); raw inputs there would open every customer's personal data to one role. Anyone else
who needs it is given the permission by hand.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from governance.permissions import DATA_CURATOR, ESCALATION_MANAGER, MODEL_STEWARD, PRODUCT_OWNER, REVIEWER

ROLE_PERMISSIONS: dict[str, list[str]] = {
    REVIEWER: [
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
        "reviews.add_decision",
    ],
    ESCALATION_MANAGER: [
        "governance.view_incident",
        "cases.view_case",
        "cases.change_case",
        "cases.view_pii",
        "cases.view_queue",
        "reviews.view_decision",
        "reviews.add_decision",
    ],
    PRODUCT_OWNER: [
        "governance.add_category",
        "metrics.view_alertrule",
        "metrics.change_alertrule",
        "metrics.view_alert",
        "governance.view_policy",
        "governance.change_policy",
        "governance.view_modelversion",
        "cases.view_queue",
        "cases.change_queue",
        "cases.view_case",
        "reviews.view_decision",
    ],
    MODEL_STEWARD: [
        "governance.view_category",
        "governance.view_policy",
        "governance.view_modelversion",
        "governance.add_modelversion",
        "governance.change_modelversion",
        "governance.view_auditevent",
        "governance.view_incident",
        "governance.add_incident",
        "governance.change_incident",
        "metrics.view_alertrule",
        "metrics.view_alert",
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
    ],
    DATA_CURATOR: [
        "governance.view_category",
        "governance.view_policy",
        "governance.view_auditevent",
        "cases.view_case",
        "cases.view_queue",
        "reviews.view_decision",
    ],
}


def ensure_roles() -> None:
    """Create any missing role group or permission grant (idempotent).

    The data migration creates the roles; this runs after every `migrate` and `flush` as well, so a database
    emptied by a flush (as transactional tests do) gets them back.
    """
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = set(perms)
        have = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        for dotted in wanted - have:
            app_label, codename = dotted.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
