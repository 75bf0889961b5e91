"""The incident page's panel from the cases layer: links to the cases an incident affected (governance never names
cases; it shows the panels registered from above, `register_incident_panel`)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from governance.admin.incidents import register_incident_panel
from governance.models import Incident


@admin.display(description="affected cases")
def affected_cases(incident: Incident) -> str:
    """The incident page's links to the cases it affected (the first 50, and how many in all)."""
    ids = incident.affected_case_ids or []
    links = format_html_join(
        ", ", '<a href="{}">{}</a>', ((reverse("admin:cases_case_change", args=[pk]), pk) for pk in ids[:50])
    )
    return format_html("{} ({} in all)", links, len(ids)) if ids else "-"


register_incident_panel(affected_cases)
