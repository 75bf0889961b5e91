"""A reviewer batch-approves three cases by keyboard alone in a real browser, reading each case's message first.

The test counts every key pressed from the work list to the approved batch (at most 8 for three cases: the issue
saw 134 with Tab and Space), asserts that the confirmation page shows each case's input, and saves the
confirmation's screenshot at a laptop's 1366x768 to docs/batch.png. Skipped like the other browser test where
chromium or Playwright is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from cases.models import Case, Queue
from governance.choices import AuditKind
from governance.models import AuditEvent
from reviews.models import Decision
from tests.factories import grant_queue, make_case, make_category
from tests.test_browser_review import CHROMIUM, browser, sign_in, sync_api

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "batch.png"
LIST_PATH = "/admin/reviews/work/queue/support-quick/"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: apt-get install chromium"),
]
__all__ = ["browser"]  # the fixture, shared with the review page's browser test

# Four tickets in work-list order; the second is the shipping complaint labelled "technical", which
# the reviewer reads on the list and leaves out of the batch.
TICKETS = [
    ("TCK-1", "Invoice copy", "Could you send me a copy of my March invoice? I cannot find it.", "billing",
     "Your March invoice is attached to this message."),
    ("TCK-2", "Parcel lost", "My parcel was due on Monday and tracking has not moved for a week.", "technical",
     "Please restart your router and try again."),
    ("TCK-3", "Change my address", "I moved last week; please update my delivery address.", "account",
     "We have updated the delivery address on your account."),
    ("TCK-4", "Login fails", "The app says my password is wrong although I just reset it.", "technical",
     "Please clear the app's cache and sign in again."),
]  # fmt: skip


@pytest.fixture
def reviewer(live_server: Any, make_user: Any) -> User:
    category = make_category("support")
    user: User = make_user("rita", roles=["Reviewer"], is_staff=True, first_name="Rita")
    grant_queue(user, Queue.objects.get(slug="support-quick"))
    for number, (external_id, subject, body, label, draft) in enumerate(TICKETS):
        make_case(
            category,
            external_id=external_id,
            input={"subject": subject, "body": body, "from": f"Customer {number} <c{number}@example.com>"},
            output={"label": label, "text": draft},
            confidence=0.82,
            customer_ref=f"CUST-{1000 + number}",
            value=10 * (number + 1),
        )
    return user


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_batch_approves_three_cases_by_keyboard_in_at_most_8_keys(
    live_server: Any, browser: Any, reviewer: User
) -> None:
    page = sign_in(browser, live_server.url, "rita", LIST_PATH)
    page.set_viewport_size({"width": 1366, "height": 768})
    pressed: list[str] = []

    def press(key: str, *, navigates: bool = False) -> None:
        pressed.append(key)
        if navigates:
            with page.expect_navigation():
                page.keyboard.press(key)
        else:
            page.keyboard.press(key)

    rows = page.locator("#work-list tr[data-batch-row]")
    sync_api.expect(rows.first).to_be_focused()  # the cursor starts on the first row: x works at once
    sync_api.expect(rows.nth(1)).to_contain_text("tracking has not moved")  # the complaint, beside its label
    for key in ("x", "j", "j", "x", "j", "x"):  # TCK-1, skip TCK-2 (a wrong answer), TCK-3, TCK-4
        press(key)
    sync_api.expect(page.locator("#batch-count")).to_have_text("3 selected")
    assert page.locator('#work-list input[name="case"]:checked').count() == 3

    press("Shift+A", navigates=True)  # ask to approve the selection: the confirmation page
    confirmation = page.locator("#batch-cases")
    sync_api.expect(confirmation).to_be_visible()
    for external_id, subject, body, _label, draft in (TICKETS[0], TICKETS[2], TICKETS[3]):
        row = confirmation.locator("tr", has_text=external_id)
        sync_api.expect(row).to_contain_text(subject)
        sync_api.expect(row).to_contain_text(body)
        sync_api.expect(row).to_contain_text(draft)
    sync_api.expect(confirmation).not_to_contain_text("TCK-2")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    press("Shift+A", navigates=True)  # approve them
    sync_api.expect(page.locator("ul.messagelist")).to_contain_text("Approved 3 case(s) in batch")

    assert len(pressed) <= 8, pressed
    statuses = dict(Case.objects.values_list("external_id", "status"))
    assert statuses == {"TCK-1": "approved", "TCK-2": "queued", "TCK-3": "approved", "TCK-4": "approved"}
    decisions = Decision.objects.filter(case__external_id__in=["TCK-1", "TCK-3", "TCK-4"])
    assert decisions.count() == 3 and len(set(decisions.values_list("batch_id", flat=True))) == 1
    assert all(seconds is not None for seconds in decisions.values_list("seconds_spent", flat=True))
    event = AuditEvent.objects.get(kind=AuditKind.BATCH_APPROVED)
    assert event.payload["median_seconds_per_case"] is not None
