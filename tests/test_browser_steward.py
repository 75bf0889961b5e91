"""A model steward resumes a category the pause rule paused, in a real browser, and the incident the pause opened
then shows the resume on its timeline and has moved on to investigate.

Drives Debian's chromium through Playwright against pytest-django's live server, at a laptop's 1366x768; skipped,
with the reason shown, where chromium or Playwright is missing (as test_browser_review.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from governance.models import Category, Incident
from metrics.services.pause import pause_automation
from tests.factories import make_category

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
PASSWORD = "pass-word-123"  # the factories' password
LAPTOP = {"width": 1366, "height": 768}

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: apt-get install chromium"),
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are safe beside it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def paused(live_server: Any) -> tuple[Category, Incident]:
    category = make_category("support")
    incident = pause_automation(
        category=category,
        reason="Pause rule: 6 of 100 reviewed outputs refused",
        title="support: automation paused, 6.0% of reviewed outputs refused",
        trigger="pause_rule",
        evidence={"reviewed": 100, "not_as_proposed": 6},
        contained_by="automation paused (human-first) by the pause rule",
        notify_subject="support paused",
    )
    return category, incident


def sign_in(browser: Any, base_url: str, username: str, next_path: str) -> Any:
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    # The username field takes the focus once the page has run its script: typing before that loses keystrokes.
    sync_api.expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)
    return page


def test_a_steward_resumes_a_paused_category_and_the_incident_shows_it(
    browser: Any, live_server: Any, make_user: Any, paused: tuple[Category, Incident], tmp_path: Path
) -> None:
    category, incident = paused
    steward: User = make_user("max", roles=["Model Steward"], is_staff=True)
    category_path = f"/admin/governance/category/{category.pk}/change/"
    page = sign_in(browser, live_server.url, steward.username, category_path)

    # The category reads as paused, with the incident its pause opened.
    sync_api.expect(page.locator(".field-automation")).to_contain_text("paused")
    sync_api.expect(page.locator(".field-pause_incident_link a")).to_have_text(f"#{incident.pk}")

    page.get_by_role("link", name="Resume automation").click()
    page.locator("#id_reason").fill("Retrained on last week's corrections; overrides back to 2 %")
    with page.expect_navigation():
        page.get_by_role("button", name="Resumed").click()
    sync_api.expect(page.locator(".messagelist .success")).to_contain_text("Resumed: support")
    sync_api.expect(page.locator(".field-automation .readonly")).to_have_text("on")

    page.goto(f"{live_server.url}/admin/governance/incident/{incident.pk}/change/")
    timeline = page.locator(".field-timeline_table table tr").last
    sync_api.expect(timeline).to_contain_text("Investigate")
    sync_api.expect(timeline).to_contain_text("max")
    sync_api.expect(timeline).to_contain_text(
        "Automation resumed by max: Retrained on last week's corrections; overrides back to 2 %"
    )
    sync_api.expect(page.locator(".field-stage")).to_contain_text("Investigate")
    page.screenshot(path=str(tmp_path / "incident.png"), full_page=True)

    incident.refresh_from_db()
    assert incident.stage == "investigate"
    assert not Category.objects.get(pk=category.pk).paused
