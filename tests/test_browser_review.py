"""A reviewer works a queue with the keyboard alone in a real browser; an escalation manager then sees the case.

Drives Debian's chromium through Playwright against pytest-django's live server. Skipped, with the reason shown,
where chromium or Playwright is missing (CI installs chromium first, so there it always runs). Saves the review
page's screenshot, at a 1366x768 laptop's viewport, to docs/review-page.png.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from cases.models import Case, Queue
from reviews import services
from reviews.models import Decision
from reviews.services.claims import LEAVE_GRACE
from tests.factories import grant_queue, make_case, make_category

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "review-page.png"
PASSWORD = "pass-word-123"  # the factories' password

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: apt-get install chromium"),
]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls under a running loop
    # unless told the calls are safe (they are: the loop is Playwright's, not a request's).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, base_url: str, username: str, next_path: str, viewport: tuple[int, int] = (1360, 900)) -> Any:
    """A fresh browser session signed in through the admin's login form, with the keyboard."""
    page = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    # The username field takes the focus once the page has run its script: typing before that loses keystrokes.
    sync_api.expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)  # not the login page, whose ?next= matches
    return page


def press_and_wait(page: Any, key: str) -> None:
    """Press a key that submits a form or follows a link, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


@pytest.fixture
def people(live_server: Any, make_user: Any) -> tuple[User, User]:
    category = make_category("refunds")
    reviewer = make_user("rita", roles=["Reviewer"], is_staff=True, first_name="Rita")
    manager = make_user("emil", roles=["Escalation Manager"], is_staff=True, first_name="Emil")
    for kind in ("quick", "full"):
        grant_queue(reviewer, Queue.objects.get(slug=f"refunds-{kind}"))
    for kind in ("escalation", "expert"):
        grant_queue(manager, Queue.objects.get(slug=f"refunds-{kind}"))
    common = {"confidence": 0.82, "customer_ref": "cust-1042", "segment": {"channel": "email", "tier": "gold"}}
    make_case(
        category,
        external_id="RF-1001",
        input={"subject": "Broken kettle", "message": "The kettle I ordered arrived cracked. Refund please."},
        output={"label": "refund", "text": "We are sorry; a full refund is on its way.", "reasoning": "Damaged."},
        value=39,
        **common,
    )
    make_case(
        category,
        external_id="RF-1002",
        input={"subject": "Late parcel", "message": "My parcel is a week late. I want my money back."},
        output={"label": "refund", "text": "We have refunded your order.", "reasoning": "Delivery delay."},
        value=120,
        **common,
    )
    make_case(
        category,
        external_id="RF-1003",
        input={
            "subject": "Chargeback threat",
            "message": "Refund the 450 EUR today or my lawyer files a chargeback and reports you.",
        },
        output={
            "label": "refund",
            "text": "We have issued a full refund of 450 EUR.",
            "reasoning": "The customer asks for a refund and mentions a chargeback.",
        },
        value=450,
        rules_fired=["mentions-legal-action"],
        **common,
    )
    return reviewer, manager


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_works_three_cases_with_the_keyboard_and_a_manager_sees_the_escalation(
    live_server: Any, browser: Any, people: tuple[User, User]
) -> None:
    base = live_server.url
    page = sign_in(browser, base, "rita", "/admin/reviews/work/")

    press_and_wait(page, "1")  # the first of my queues: refunds-quick
    assert "/admin/reviews/work/queue/refunds-quick/" in page.url
    press_and_wait(page, "n")  # claim the next case and open it
    sync_api.expect(page.locator("#claim")).to_contain_text("Claimed by you until")
    sync_api.expect(page.locator("h1")).to_contain_text("RF-1001")

    press_and_wait(page, "a")  # approve; the next case opens, already claimed
    sync_api.expect(page.locator("h1")).to_contain_text("RF-1002")

    page.keyboard.press("c")  # correct: the label field takes the focus, its text selected
    page.keyboard.type("partial_refund")
    page.keyboard.press("Enter")  # a label refunds has never had: the browser holds the form back
    assert page.locator("#id_label").evaluate("field => field.validity.customError")
    page.keyboard.press("Tab")  # to "new label"
    page.keyboard.press("Space")  # the deliberate confirmation
    page.keyboard.press("Shift+Tab")
    press_and_wait(page, "Enter")
    sync_api.expect(page.locator("h1")).to_contain_text("RF-1003")
    sync_api.expect(page.locator("#similar")).to_contain_text("approve")

    page.keyboard.press("e")  # escalate: the reason select takes the focus
    page.keyboard.press("1")  # policy_legal
    assert page.locator("#id_escalate_reason").input_value() == "policy_legal"
    press_and_wait(page, "Enter")
    sync_api.expect(page.locator("ul.messagelist")).to_contain_text("sent to refunds-escalation")

    cases = {case.external_id: case for case in Case.objects.select_related("queue")}
    assert (cases["RF-1001"].status, cases["RF-1001"].final_output["label"]) == ("approved", "refund")
    assert (cases["RF-1002"].status, cases["RF-1002"].final_output["label"]) == ("corrected", "partial_refund")
    assert (cases["RF-1003"].status, cases["RF-1003"].queue.slug) == ("escalated", "refunds-escalation")
    decisions = list(Decision.objects.order_by("id"))
    assert [(d.action, d.reason_code) for d in decisions] == [
        ("approve", ""),
        ("correct", ""),
        ("escalate", "policy_legal"),
    ]
    assert all(d.seconds_spent is not None for d in decisions)

    boss = sign_in(browser, base, "emil", "/admin/reviews/work/queue/refunds-escalation/")
    sync_api.expect(boss.locator("#work-list")).to_contain_text("RF-1003")
    with boss.expect_navigation():
        boss.get_by_role("link", name=f"#{cases['RF-1003'].pk}").click()
    why = boss.locator("#escalations")
    sync_api.expect(why).to_contain_text("Escalate by rita")
    sync_api.expect(why).to_contain_text("Policy or legal")
    sync_api.expect(boss.locator("#reassign")).to_be_visible()


# The controls a decision needs, which a 1366x768 laptop must show at once, uncovered.
DECISION_CONTROLS = (
    "#approve",
    "#id_label",
    "#correct",
    "#id_reject_reason",
    "#reject",
    "#id_escalate_reason",
    "#escalate",
)


@pytest.mark.django_db(transaction=True)
def test_the_review_page_fits_a_laptop_screen_with_every_control_in_view_and_uncovered(
    live_server: Any, browser: Any, people: tuple[User, User]
) -> None:
    reviewer, _ = people
    category = Case.objects.get(external_id="RF-1001").category
    for n in range(4):  # a customer with history, and similar past decisions
        past = make_case(
            category,
            external_id=f"RF-09{n}",
            customer_ref="cust-1042",
            confidence=0.82,
            input={"subject": f"Order {n}", "message": "Where is my refund? It has been two weeks now."},
            output={"label": "refund"},
        )
        if n % 2:
            services.decide(case=past, user=reviewer, action="reject", reason_code="wrong_label", notes="not a refund")
        else:
            services.decide(case=past, user=reviewer, action="approve")
    page = sign_in(browser, live_server.url, "rita", "/admin/reviews/work/", viewport=(1366, 768))
    press_and_wait(page, "n")  # My queues: the next case of the first queue with work
    sync_api.expect(page.locator("h1")).to_contain_text("RF-1001")
    assert page.evaluate("window.scrollY") == 0

    height = page.viewport_size["height"]
    for selector in DECISION_CONTROLS + ("#facts", "#input", "#model-output"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] >= 0, selector
        assert box["y"] + box["height"] <= height, f"{selector} ends at {box['y'] + box['height']} > {height}"
        if selector in DECISION_CONTROLS:
            # What a click at the control's middle would hit: the control itself, not the keys bar over it.
            on_top = page.evaluate(
                "([s, x, y]) => { const e = document.elementFromPoint(x, y); return !!e && !!e.closest(s); }",
                [selector, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
            )
            assert on_top, f"{selector} is covered"
    for selector in ("#customer-cases", "#similar"):  # beside the decision, not below it
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] > page.locator("#actions").bounding_box()["x"], selector
    sync_api.expect(page.locator("#similar")).to_contain_text("Where is my refund?")
    sync_api.expect(page.locator("#similar")).to_contain_text("wrong_label")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    # The page keeps the claim through a reload, and lets it go when the reviewer leaves without deciding.
    case = Case.objects.get(external_id="RF-1001")
    page.reload()
    sync_api.expect(page.locator("#claim")).to_contain_text("Claimed by you until")
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('/keep/'))")
    assert _claim_left(case) > timedelta(minutes=14)
    press_and_wait(page, "q")
    assert "/admin/reviews/work/queue/refunds-quick/" in page.url
    deadline = time.monotonic() + 10
    while _claim_left(case) > LEAVE_GRACE and time.monotonic() < deadline:  # the beacon is on its way
        time.sleep(0.1)
    assert _claim_left(case) <= LEAVE_GRACE


def _claim_left(case: Case) -> timedelta:
    case.refresh_from_db()
    assert case.claimed_until is not None
    return case.claimed_until - timezone.now()
