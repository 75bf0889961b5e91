"""Incidents: opened by hand or by the pause rule, moved forward with notes, each step on the timeline."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cases.models import Queue
from governance.models import AuditEvent, Incident, Notification
from governance.services.incidents import advance_incident, open_incident
from governance.services.notifications import notify
from metrics.models import Alert, AlertRule
from metrics.services.alerts import evaluate
from reviews import services as review
from tests.factories import grant_queue, make_case, make_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def steward(make_user):
    return make_user("steward", roles=["Model Steward"], is_staff=True)


def test_an_incident_moves_forward_with_notes_and_closes(steward):
    incident = open_incident(category=make_category("cat"), title="Drift", user=steward)
    assert incident.stage == "detect"
    for stage in ("investigate", "remediate", "closed"):
        incident = advance_incident(incident=incident, user=steward, stage=stage, note=f"now {stage}")
    assert incident.closed_at is not None
    assert [e.stage for e in incident.timeline.all()] == ["detect", "investigate", "remediate", "closed"]
    assert AuditEvent.objects.filter(kind="incident.opened").count() == 1
    assert AuditEvent.objects.filter(kind="incident.changed").count() == 3


def test_an_incident_never_moves_back_and_needs_a_note(steward):
    incident = open_incident(category=make_category("cat"), title="x", user=steward, contained_by="paused")
    assert incident.stage == "contain"
    with pytest.raises(ValidationError):
        advance_incident(incident=incident, user=steward, stage="detect", note="back")
    with pytest.raises(ValidationError):
        advance_incident(incident=incident, user=steward, stage="investigate", note=" ")
    assert Incident.objects.get(pk=incident.pk).stage == "contain"


def test_a_steward_opens_and_advances_an_incident_in_the_admin(client, steward):
    category = make_category("cat")
    client.force_login(steward)
    response = client.post("/admin/governance/incident/add/", {"category": category.pk, "title": "Bad drafts"})
    assert response.status_code == 302, response.content[:500]
    incident = Incident.objects.get()
    assert (incident.title, incident.opened_by, incident.trigger) == ("Bad drafts", steward, "manual")
    page = client.get(f"/admin/governance/incident/{incident.pk}/change/")
    assert page.status_code == 200 and b"Bad drafts" in page.content
    response = client.post(
        f"/admin/governance/incident/{incident.pk}/advance/",
        {"stage": "investigate", "note": "looking at the prompts", "root_cause": "", "remediation": "", "post": "yes"},
    )
    assert response.status_code in (200, 302)
    incident.refresh_from_db()
    assert incident.stage == "investigate"
    assert incident.timeline.last().note == "looking at the prompts"


def test_a_reviewer_cannot_open_or_see_incidents(client, make_user):
    make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    client.force_login(reviewer)
    assert client.get("/admin/governance/incident/").status_code == 403


def test_each_person_sees_only_their_own_notices(client, make_user):
    a = make_user("a", is_staff=True)
    b = make_user("b", is_staff=True)
    notify([a], subject="for a only")
    notify([b], subject="for b only")
    client.force_login(a)
    page = client.get("/admin/governance/notification/").content.decode()
    assert "for a only" in page and "for b only" not in page
    other = Notification.objects.get(user=b)
    assert client.get(f"/admin/governance/notification/{other.pk}/change/").status_code in (302, 403, 404)


def test_an_incident_opened_by_an_alert_links_to_it(client, superuser, make_user):
    category = make_category("cat")
    reviewer = make_user("rev", roles=["Reviewer"])
    grant_queue(reviewer, Queue.objects.get(slug="cat-quick"))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    for i in range(20):
        case = make_case(category, confidence=0.8)
        review.decide(case=case, user=reviewer, action="reject" if i < 10 else "approve", reason_code="other")
    rule = AlertRule.objects.get(category=category, kind="override_rate")
    rule.action = "pause"
    rule.save()
    [alert] = evaluate(rule)
    client.force_login(superuser)
    page = client.get(f"/admin/governance/incident/{alert.incident_id}/change/").content.decode()
    assert f"/admin/metrics/alert/{alert.pk}/change/" in page


def test_the_incident_page_shows_the_affected_cases_and_the_alerts_after_the_evidence(client, superuser):
    """Both rows come from the layers above (panels registered by cases' and metrics' admins), in layer order."""
    category = make_category("cat")
    case = make_case(category)
    incident = open_incident(
        category=category, title="Overrides", user=None, evidence={"rate": 0.3}, affected_case_ids=[case.pk]
    )
    rule = AlertRule.objects.get(category=category, kind="override_rate")
    alert = Alert.objects.create(
        rule=rule, category=category, fired_at=timezone.now(), value=0.3, threshold=0.2, incident=incident
    )

    client.force_login(superuser)
    page = client.get(f"/admin/governance/incident/{incident.pk}/change/").content.decode()

    assert f'<a href="/admin/cases/case/{case.pk}/change/">{case.pk}</a> (1 in all)' in page
    assert f'<a href="/admin/metrics/alert/{alert.pk}/change/">override_rate 0.3</a>' in page
    rows = ["field-evidence", "field-affected_cases", "field-alerts_fired", "field-root_cause"]
    assert [page.index(row) for row in rows] == sorted(page.index(row) for row in rows)
