"""Incidents: open one (by hand, an alert or an automatic pause) and move it through its stages.

Every step writes a timeline entry with who did it; opening writes an `incident.opened` audit event (which
the webhooks of the category receive) and each stage change an `incident.changed` one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance import events
from governance.choices import AuditKind, IncidentStage
from governance.history import save_with_reason
from governance.models import Category, Incident, IncidentEntry

if TYPE_CHECKING:
    from django.contrib.auth.models import User

STAGE_ORDER = list(IncidentStage.values)


@transaction.atomic
def open_incident(
    *,
    category: Category,
    title: str,
    user: User | None,
    trigger: str = "manual",
    evidence: dict[str, Any] | None = None,
    affected_case_ids: list[int] | None = None,
    contained_by: str = "",
    opened_by_pause: bool = False,
) -> Incident:
    """Open an incident at `detect`; with `contained_by` (e.g. "automation paused") it is contained at once.

    `opened_by_pause`: the category's current pause (made in this transaction) opened it, so the resume that
    ends the pause is written on it (governance.services.categories.resume_category).
    """
    incident = Incident.objects.create(
        category=category,
        title=title,
        opened_by=user,
        trigger=trigger,
        evidence=evidence or {},
        affected_case_ids=affected_case_ids or [],
        stage=IncidentStage.CONTAIN if contained_by else IncidentStage.DETECT,
    )
    IncidentEntry.objects.create(incident=incident, actor=user, stage=IncidentStage.DETECT, note=f"Detected: {title}")
    if contained_by:
        IncidentEntry.objects.create(
            incident=incident, actor=user, stage=IncidentStage.CONTAIN, note=f"Contained: {contained_by}"
        )
    if opened_by_pause:
        # A link, not a change anyone made to the category: no history row of its own.
        Category.objects.filter(pk=category.pk, paused=True).update(pause_incident=incident)
    events.record(
        AuditKind.INCIDENT_OPENED,
        actor=user,
        category_slug=category.slug,
        payload={
            "incident_id": incident.pk,
            "title": title,
            "trigger": trigger,
            "stage": incident.stage,
            "evidence": incident.evidence,
        },
    )
    return incident


@transaction.atomic
def advance_incident(
    *,
    incident: Incident,
    user: User,
    stage: str,
    note: str,
    root_cause: str | None = None,
    remediation: str | None = None,
) -> Incident:
    """Move the incident to a later stage (or add a note at the same stage), with what was done."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say what was done: it goes on the incident's timeline."})
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if stage not in STAGE_ORDER:
        raise ValidationError({"stage": f"Choose one of {STAGE_ORDER}."})
    if incident.stage == IncidentStage.CLOSED:
        raise ValidationError({"stage": "The incident is closed."})
    if STAGE_ORDER.index(stage) < STAGE_ORDER.index(incident.stage):
        raise ValidationError({"stage": f"An incident moves forward: it is already at {incident.stage}."})
    previous = incident.stage
    incident.stage = stage
    if root_cause is not None:
        incident.root_cause = root_cause
    if remediation is not None:
        incident.remediation = remediation
    if stage == IncidentStage.CLOSED:
        incident.closed_at = timezone.now()
    save_with_reason(incident, user=user, reason=note)
    IncidentEntry.objects.create(incident=incident, actor=user, stage=stage, note=note)
    events.record(
        AuditKind.INCIDENT_CHANGED,
        actor=user,
        category_slug=incident.category.slug,
        payload={"incident_id": incident.pk, "from": previous, "to": stage, "note": note},
    )
    return incident
