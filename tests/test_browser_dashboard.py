"""A product owner reads the dashboard in a real browser, follows a figure to its cases and adopts an advisor row.

Drives Debian's chromium through Playwright against pytest-django's live server, at a laptop's 1366x768; skipped,
with the reason shown, where chromium or Playwright is missing (as test_browser_review.py). The data is eight days
of history made through the services (tests/fixtures/history.py). Saves the page to docs/dashboard.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm

from governance.models import Policy
from tests.fixtures.history import History, build_history, history_category

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
PASSWORD = "pass-word-123"
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
def history(live_server: Any, make_user: Any) -> History:
    # Eight days: the 7-day window, and one day of the window before it for the drift to compare with.
    category = history_category("support", audit_rate=0.25)
    story = build_history(category, days=8, per_day=24, drift_days=2, sweep_every=timedelta(hours=3))
    owner = make_user("paula", roles=["Product Owner"], is_staff=True, first_name="Paula")
    owner.set_password(PASSWORD)
    owner.save()
    assign_perm("governance.view_category", owner, story.category)
    assign_perm("governance.change_category", owner, story.category)
    return story


def test_a_product_owner_reads_the_dashboard_follows_a_tile_and_adopts_an_advisor_row(
    live_server: Any, browser: Any, history: History
) -> None:
    base = live_server.url
    page = browser.new_context(viewport=LAPTOP).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "paula")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.press("#id_password", "Enter")

    with page.expect_navigation():
        page.get_by_role("link", name="Dashboard").first.click()  # from the index's app list
    sync_api.expect(page.locator("h1")).to_have_text("Dashboard: Support")
    sync_api.expect(page.locator(".hitl-dash-windows strong")).to_have_text("24h")

    with page.expect_navigation():
        page.locator(".hitl-dash-windows a", has_text="7d").click()
    sync_api.expect(page.locator(".hitl-dash-windows strong")).to_have_text("7d")
    assert "window=7d" in page.url
    page.wait_for_function("document.querySelector('.hitl-dash').classList.contains('hitl-charts')")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    volume = page.locator("#tile-volume .hitl-tile-value").inner_text()
    with page.expect_navigation():
        page.locator("#tile-volume .hitl-tile-value").click()
    assert urlsplit(page.url).path == "/admin/cases/case/"
    assert parse_qs(urlsplit(page.url).query)["kpi"] == ["created"]
    sync_api.expect(page.locator("#changelist-filter")).to_contain_text("Cases created in the window")
    sync_api.expect(page.locator(".paginator")).to_contain_text(f"{volume} case")
    page.go_back()

    row = page.locator("#advisor-rows tr:has(details)").last  # the highest threshold the data can advise
    threshold = row.locator("input[name=threshold]").get_attribute("value")
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("Fewer reviews for the same error, as the advisor shows")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    sync_api.expect(page.locator(".messagelist")).to_contain_text(f"the auto threshold is now {threshold}")
    sync_api.expect(page.locator(f'[id="advisor-{threshold}"]')).to_contain_text("current")
    policy = Policy.objects.get(category=history.category)
    assert (policy.version, f"{policy.auto_threshold:.2f}") == (2, threshold)
    assert policy.history.first().history_user == User.objects.get(username="paula")
