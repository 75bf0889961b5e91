"""Admin forms for people, not JSON: list settings one entry per line with errors that name the bad line, an
incident's title shown as text, and history that names who changed what."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from governance.models import Category, Policy
from governance.services import resume_category
from governance.services.incidents import open_incident
from metrics.services.pause import pause_automation
from tests.factories import login, make_category
from tests.test_admin import policy_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("forms")


def change_url(category: Category) -> str:
    return reverse("admin:governance_category_change", args=[category.pk])


def test_the_policy_form_shows_lists_one_entry_per_line(category: Category, superuser: User) -> None:
    Policy.objects.filter(category=category).update(sensitive_labels=["legal", "refund"])
    page = login(superuser).get(change_url(category)).content.decode()
    assert ">\nlegal\nrefund</textarea>" in page
    assert ">\nnear_threshold = 3\ntop_decile_value = 2\nnew_segment = 2\ncanary = 3</textarea>" in page


def test_sensitive_labels_one_per_line_make_a_new_policy_version(category: Category, superuser: User) -> None:
    data = policy_form(category.policy, reason="legal cases need eyes", sensitive_labels="legal\n\n  refund  \n")
    assert login(superuser).post(change_url(category), data).status_code == 302
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.sensitive_labels) == (2, ["legal", "refund"])


def test_a_bad_list_entry_is_refused_by_its_line_and_nothing_changes(category: Category, superuser: User) -> None:
    data = policy_form(category.policy, reason="x", sensitive_labels='legal\n["refund"]\nref#und\nlegal')
    response = login(superuser).post(change_url(category), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["sensitive_labels"]
    assert errors == [
        "Line 2, '[\"refund\"]': write one label per line, without JSON brackets or quotes.",
        "Line 3, 'ref#und': a label holds letters, digits, spaces and . _ - : / only (one per line).",
        "Line 4, 'legal': this label is already listed.",
    ]
    assert Policy.objects.get(category=category).version == 1


def test_audit_multipliers_are_stratum_lines_and_an_unknown_one_is_named(category: Category, superuser: User) -> None:
    client = login(superuser)
    bad = policy_form(category.policy, reason="x", audit_multipliers="canary = 4\nnear_treshold = 2\nnew_segment = -1")
    response = client.post(change_url(category), bad)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["audit_multipliers"]
    assert errors[0].startswith("Line 2, 'near_treshold = 2': 'near_treshold' is not a stratum; the strata are [")
    assert errors[1] == "Line 3, 'new_segment = -1': the multiplier must be a number >= 0."
    assert Policy.objects.get(category=category).version == 1
    good = policy_form(
        category.policy, reason="canaries deserve more", audit_multipliers="canary = 4\nnear_threshold: 3"
    )
    assert client.post(change_url(category), good).status_code == 302
    policy = Policy.objects.get(category=category)
    assert (policy.version, policy.audit_multipliers) == (2, {"canary": 4.0, "near_threshold": 3.0})


def test_pii_fields_of_a_new_category_are_one_per_line(superuser: User) -> None:
    data = {
        "slug": "invoices",
        "name": "Invoices",
        "description": "",
        "pattern": "exception",
        "stage": "live",
        "consequence": "low",
        "pii_fields": "email\ncustomer.phone",
        "retention_days": "365",
        "baseline_minutes_per_case": "5",
        **policy_form(Policy()),
    }
    assert login(superuser).post(reverse("admin:governance_category_add"), data).status_code == 302
    assert Category.objects.get(slug="invoices").pii_fields == ["email", "customer.phone"]


def test_an_incidents_title_is_shown_as_text(category: Category, superuser: User) -> None:
    incident = open_incident(category=category, title="<b>refunds</b> & co", user=superuser)
    page = login(superuser).get(reverse("admin:governance_incident_change", args=[incident.pk])).content.decode()
    head = page.split("</title>")[0]
    assert "&lt;b&gt;refunds&lt;/b&gt; &amp; co" in head and "<a " not in head
    assert "<b>refunds</b>" not in page
    # The way forward is a tool above the form, not HTML in the title.
    assert f'<li><a href="{reverse("admin:governance_incident_advance", args=[incident.pk])}">' in page


def test_category_history_names_who_paused_and_resumed_without_deleted_users(
    category: Category, make_user: Any, superuser: User
) -> None:
    pause_automation(
        category=category,
        reason="Pause rule: spike",
        title="paused",
        trigger="pause_rule",
        evidence={},
        contained_by="paused",
        notify_subject="paused",
    )
    steward = make_user("steward", roles=["Model Steward"])
    resume_category(category=category, user=steward, reason="fixed")
    page = login(superuser).get(reverse("admin:governance_category_history", args=[category.pk])).content.decode()
    assert "Deleted user" not in page and "pk=None" not in page
    assert "<strong>Paused by:</strong> —&nbsp;&rarr;&nbsp;system" in page
    assert "<strong>Paused:</strong> no&nbsp;&rarr;&nbsp;yes" in page
    assert "<td>steward</td>" in page
