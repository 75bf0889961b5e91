"""The metrics dashboard in the admin: who sees it, what it shows, where its numbers lead, and the advisor's form.

A small story, with counts chosen so each figure has one right answer, is told through the product's services;
the page is read as a product owner (who may change the category), a reviewer (their own row only), someone who
sees no category, and someone who may see the category but not change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Case, Queue
from cases.services.sla import sweep
from governance.models import Category, ModelVersion, Policy
from metrics.kpis import Window
from metrics.selectors import with_kpis
from metrics.services.snapshots import HOUR, hour_start, snapshot_hour
from reviews import services as review
from tests.factories import grant_queue, login, make_case, make_category

pytestmark = pytest.mark.django_db

URL = "/admin/metrics/dashboard/"
CASES = "/admin/cases/case/"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@dataclass
class Story:
    category: Category
    owner: User
    reviewer: User
    second: User
    curator: User


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # grants are cached on a user object


@pytest.fixture
def story(make_user: Any) -> Story:
    """Category `cat`: every auto case audited, a pause rule that never fires.

    - 2 auto cases (0.95): one confirmed, one flagged by audit;
    - 6 quick cases (0.80) decided by `rev`: 3 approved, 1 corrected, 1 rejected, 1 escalated (policy_legal);
    - 1 quick case (0.80) approved by `rev2`;
    - 1 full case (0.50) created 6 hours ago, left waiting: the sweep moves it to escalation, one SLA breach.
    """
    category = make_category("cat", auto_threshold=0.9, review_threshold=0.6, audit_rate=1.0, pause_min_reviews=10**6)
    owner = make_user("po", roles=["Product Owner"], is_staff=True)
    assign_perm("governance.view_category", owner, category)
    assign_perm("governance.change_category", owner, category)
    reviewer = make_user("rev", roles=["Reviewer"], is_staff=True)
    second = make_user("rev2", roles=["Reviewer"], is_staff=True)
    for kind in ("quick", "full", "audit"):
        grant_queue(reviewer, Queue.objects.get(slug=f"cat-{kind}"))
    grant_queue(second, Queue.objects.get(slug="cat-quick"))
    curator = make_user("dana", roles=["Data Curator"], is_staff=True)
    reviewer, second = _fresh(reviewer), _fresh(second)

    with time_machine.travel(timezone.now() - timedelta(hours=6), tick=False):
        make_case(category, confidence=0.5, segment={"channel": "chat"})
    sweep()
    auto = [make_case(category, confidence=0.95, segment={"channel": "email"}) for _ in range(2)]
    review.decide(case=auto[0], user=reviewer, action="confirm", seconds_spent=20)
    review.decide(case=auto[1], user=reviewer, action="flag", reason_code="wrong_label", output={"label": "x"})
    quick = [make_case(category, confidence=0.8, segment={"channel": "email"}) for _ in range(7)]
    for case, action, extra in [
        (quick[0], "approve", {}),
        (quick[1], "approve", {}),
        (quick[2], "approve", {}),
        (quick[3], "correct", {"output": {"label": "billing"}}),
        (quick[4], "reject", {"reason_code": "bad_draft"}),
        (quick[5], "escalate", {"reason_code": "policy_legal"}),
    ]:
        review.decide(case=case, user=reviewer, action=action, seconds_spent=60, **extra)
    review.decide(case=quick[6], user=second, action="approve", seconds_spent=30)
    return Story(category, owner, reviewer, second, curator)


def board_of(response: Any) -> Any:
    assert response.status_code == 200, response.content[:500]
    return response.context["board"]


# --- who sees it ---


def test_the_index_links_the_dashboard_for_everyone_who_sees_a_category(story: Story, make_user: Any) -> None:
    outsider = make_user("nobody", roles=["Reviewer"], is_staff=True)
    for user in (story.owner, story.reviewer, story.curator):
        page = login(user).get("/admin/")
        assert f'href="{URL}"' in page.content.decode(), user
        metrics = next(app for app in page.context["app_list"] if app["app_label"] == "metrics")
        assert metrics["models"][0]["name"] == "Dashboard"
    assert URL not in login(outsider).get("/admin/").content.decode()


def test_someone_who_sees_no_category_is_told_there_is_nothing_to_show(story: Story, make_user: Any) -> None:
    client = login(make_user("nobody", roles=["Reviewer"], is_staff=True))

    page = client.get(URL)
    assert page.status_code == 200 and page.context["board"] is None
    assert "There is nothing to show" in page.content.decode()
    assert client.get(URL, {"category": "cat"}).status_code == 404


def test_a_category_the_user_may_not_see_is_a_404_on_every_path(story: Story) -> None:
    make_category("other")
    client = login(story.owner)

    assert client.get(URL, {"category": "other"}).status_code == 404
    assert client.get(URL, {"category": "no-such"}).status_code == 404
    post = {"category": "other", "window": "24h", "threshold": "0.80", "reason": "try"}
    assert client.post(URL, post).status_code == 404
    assert Policy.objects.get(category__slug="other").version == 1


def test_the_dashboard_is_for_signed_in_staff_only(story: Story, make_user: Any) -> None:
    assert Client().get(URL).status_code == 302
    assert login(make_user("not-staff")).get(URL).status_code == 302


def test_the_category_picker_offers_only_visible_categories(story: Story) -> None:
    make_category("other")
    page = login(story.owner).get(URL)
    assert [c.slug for c in page.context["categories"]] == ["cat"]
    assert 'value="other"' not in page.content.decode()


# --- what it shows ---


def test_a_product_owner_sees_every_headline_figure_with_its_band(story: Story) -> None:
    board = board_of(login(story.owner).get(URL, {"category": "cat"}))
    tiles = {tile.key: tile for tile in board.tiles}

    assert board.figures["volume"] == 10
    assert board.counts | {"previous_histogram": None, "versions": None} == {
        "volume": 10,
        "auto": 2,
        "escalated": 2,  # the case a person escalated, and the one the sweep moved up
        "waited": 10,  # the audited auto cases waited in the audit queue
        "breaches": 1,
        "verdicts": 6,
        "overridden": 2,
        "audits": 2,
        "confirmed": 1,
        "seconds_spent": 20 + 6 * 60 + 30,
        "resolved_by_people": 6,  # approved 4, corrected 1, rejected 1: the escalated one is not final yet
        "previous_histogram": None,
        "versions": None,  # each version's counts: the model versions table (test_model_kpis.py)
    }
    assert (tiles["volume"].value, tiles["auto_rate"].value, tiles["override_rate"].value) == ("10", "20.0 %", "33.3 %")
    assert tiles["override_rate"].judgement.state == "bad"
    assert "the model needs work" in tiles["override_rate"].judgement.words
    assert (tiles["escalation_rate"].value, tiles["escalation_rate"].judgement.state) == ("20.0 %", "watch")
    assert tiles["audited_accuracy"].value == "50.0 %"
    assert "1 of 2 audits confirmed; 95 % CI 9–91 %" in tiles["audited_accuracy"].detail
    assert tiles["sla_breach_rate"].value == "10.0 %"
    page = login(story.owner).get(URL, {"category": "cat"}).content.decode()
    assert "Healthy 2–30 %." in page and "Above the band: the model needs work." in page
    assert 'id="dashboard-data"' in page


def test_the_bands_say_inside_above_and_below_in_words() -> None:
    from metrics.dashboard.bands import Judgement, judge_escalation, judge_override

    assert judge_override(0.1) == Judgement("ok", "Inside the band.")
    assert judge_override(0.01).state == "watch" and "reviewing too much" in judge_override(0.01).words
    assert judge_override(None).state == "none"
    assert judge_escalation(0.10).state == "ok"
    assert judge_escalation(0.17).state == "watch"
    assert judge_escalation(0.25).state == "bad"


def test_the_product_owner_and_the_data_curator_see_every_reviewer_row(story: Story) -> None:
    for user in (story.owner, story.curator):
        board = board_of(login(user).get(URL, {"category": "cat"}))
        assert [row["username"] for row in board.reviewers] == ["rev", "rev2"]


def test_a_reviewer_sees_only_their_own_reviewer_row_and_no_advisor_form(story: Story) -> None:
    response = login(story.second).get(URL, {"category": "cat"})
    board = board_of(response)

    assert [row["username"] for row in board.reviewers] == ["rev2"]
    assert board.may_adopt is False
    page = response.content.decode()
    assert ">rev<" not in page
    assert 'name="reason"' not in page


def test_the_window_picker_switches_the_window(story: Story) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=3), tick=False):
        make_case(story.category, confidence=0.7)
    client = login(story.owner)

    day = board_of(client.get(URL, {"category": "cat", "window": "24h"}))
    week = board_of(client.get(URL, {"category": "cat", "window": "7d"}))
    hour = board_of(client.get(URL, {"category": "cat", "window": "1h"}))

    assert (day.figures["volume"], week.figures["volume"], hour.figures["volume"]) == (10, 11, 9)
    assert week.window.name == "7d" and week.trend.per == "day"
    assert day.trend.per == "hour" and len(day.trend.labels) == 24
    page = client.get(URL, {"category": "cat", "window": "7d"}).content.decode()
    assert '<strong aria-current="true" data-window="7d">7d</strong>' in page
    assert 'href="/admin/metrics/dashboard/?category=cat&amp;window=30d"' in page


def test_a_bad_window_is_a_message_and_the_default_window(story: Story) -> None:
    response = login(story.owner).get(URL, {"category": "cat", "window": "2h"})

    assert board_of(response).window.name == "24h"
    assert any("'2h' is not a window" in text for text in messages_of(response))


def test_the_model_versions_stand_side_by_side_over_the_window(story: Story) -> None:
    from governance.services import register_model_version

    register_model_version(category=story.category, name="model", version="2", user=None, status="canary", reason="t")
    make_case(story.category, confidence=0.8, model_version="model@2")
    board = board_of(login(story.owner).get(URL, {"category": "cat"}))

    rows = {row.version.label: row for row in board.versions}
    assert list(rows) == ["model@1", "model@2"]  # active first, then the canary
    assert (rows["model@1"].cases, rows["model@2"].cases) == (10, 1)
    # Per version, as the model version admin counts: reviews and audits alike (6 verdicts and 2 audits).
    assert rows["model@1"].overridden["n"] == 8 and rows["model@1"].overridden["rate"] == pytest.approx(3 / 8)
    assert rows["model@2"].overridden["n"] == 0


# --- where the numbers lead ---


def _listed(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return {case.pk for case in response.context["cl"].result_list}


def test_every_tile_links_to_the_case_list_filtered_to_its_cases(story: Story) -> None:
    client = login(story.owner)
    board = board_of(client.get(URL, {"category": "cat"}))
    tiles = {tile.key: tile for tile in board.tiles}
    cases = Case.objects.filter(category=story.category)

    for tile in board.tiles:
        parts = urlsplit(tile.url)
        assert parts.path == CASES
        query = parse_qs(parts.query)
        assert query["category"] == [str(story.category.pk)]
        since, until = query["kpi_window"][0].split("/")
        assert (since, until) == (
            board.window.start.isoformat().replace("+00:00", "Z"),
            board.window.end.isoformat().replace("+00:00", "Z"),
        )
    assert parse_qs(urlsplit(tiles["auto_rate"].url).query)["route__exact"] == ["auto"]
    assert len(_listed(client, tiles["volume"].url)) == 10
    assert _listed(client, tiles["auto_rate"].url) == set(cases.filter(route="auto").values_list("pk", flat=True))
    assert _listed(client, tiles["override_rate"].url) == set(
        cases.filter(status__in=["corrected", "rejected"]).values_list("pk", flat=True)
    )
    assert len(_listed(client, tiles["escalation_rate"].url)) == board.counts["escalated"] == 2
    assert _listed(client, tiles["audited_accuracy"].url) == set(
        cases.filter(audit_status__in=["confirmed", "flagged"]).values_list("pk", flat=True)
    )
    assert _listed(client, tiles["resolution_minutes"].url) == set(
        cases.filter(status__in=["approved", "corrected", "rejected"]).values_list("pk", flat=True)
    )
    assert _listed(client, tiles["sla_breach_rate"].url) == set(
        cases.filter(sla_breaches__isnull=False).values_list("pk", flat=True)
    )


def test_the_charts_tables_link_to_their_cases(story: Story) -> None:
    client = login(story.owner)
    board = board_of(client.get(URL, {"category": "cat"}))

    for row in board.routes:
        assert len(_listed(client, row["url"])) == row["n"]
    for row in board.histogram:
        assert len(_listed(client, row["url"])) == row["n"]
    quick = next(q for q in board.queues if q["slug"] == "cat-escalation")
    assert len(_listed(client, quick["url"])) == quick["depth"] == 2
    email = next(v for v in board.fairness[0]["values"] if v["value"] == "email")
    assert len(_listed(client, email["url"])) == email["n"]
    rev2 = next(r for r in board.reviewers if r["username"] == "rev2")
    assert len(_listed(client, rev2["url"])) == rev2["decisions"] == 1
    for row in board.advisor:
        if row["threshold"] in (0.5, 0.8, 0.81, 0.95, 0.96):
            assert len(_listed(client, row["url"])) == round(row["would_act_share"] * board.figures["volume"])


def test_a_bar_and_its_list_agree_at_the_edges_of_floating_point(story: Story) -> None:
    client = login(story.owner)
    edge = make_case(story.category, confidence=0.29)  # 0.29 * 100 is 28.999...: bucket 28, as in the KPIs
    board = board_of(client.get(URL, {"category": "cat"}))
    at_29 = next(row for row in board.advisor if row["threshold"] == 0.5)

    assert edge.pk not in _listed(client, at_29["url"])
    assert edge.pk in _listed(client, f"{CASES}?confidence=0.2-0.3")
    assert edge.pk not in _listed(client, f"{CASES}?confidence=0.29-")


def test_the_case_list_refuses_a_bad_figure_window_or_segment_the_admin_way(story: Story) -> None:
    client = login(story.owner)
    bad = [
        "kpi=nonsense&kpi_window=2026-01-01T00:00:00Z/2026-01-02T00:00:00Z",
        "kpi=created&kpi_window=yesterday",
        "kpi=created&kpi_window=2026-01-02T00:00:00Z/2026-01-01T00:00:00Z",
        "kpi=reviewed&kpi_window=2026-01-01T00:00:00Z/2026-01-02T00:00:00Z",
        "segment=no-colon",
        "segment=a__b:c",
        "confidence=0.123-",
        "model_version=999999",
    ]
    for query in bad:
        response = client.get(f"{CASES}?{query}")
        assert response.status_code == 302 and response["Location"].endswith("?e=1"), query


def test_the_figure_filter_says_what_the_list_shows(story: Story) -> None:
    client = login(story.owner)
    board = board_of(client.get(URL, {"category": "cat"}))
    override = next(tile for tile in board.tiles if tile.key == "override_rate")

    page = client.get(override.url).content.decode()
    assert "corrected or rejected by a person in the window" in page


# --- the threshold advisor ---


@pytest.fixture
def advised(story: Story) -> Story:
    """30 more quick cases at 0.82, approved: the rows up to 0.82 have 30 known outcomes or more."""
    for _ in range(30):
        case = make_case(story.category, confidence=0.82)
        review.decide(case=case, user=story.reviewer, action="approve", seconds_spent=45)
    return story


def adopt(client: Client, threshold: str, reason: str = "Fewer reviews, same error", window: str = "24h") -> Any:
    return client.post(URL, {"category": "cat", "window": window, "threshold": threshold, "reason": reason})


def test_a_product_owner_adopts_an_advisor_row_as_a_new_policy_version(advised: Story) -> None:
    client = login(advised.owner)
    board = board_of(client.get(URL, {"category": "cat"}))
    row = next(r for r in board.advisor if r["threshold"] == 0.8)
    assert row["enough_data"] and row["adoptable"]
    assert 'value="0.80"' in client.get(URL, {"category": "cat"}).content.decode()

    response = adopt(client, "0.80")

    assert response.status_code == 302 and response["Location"].endswith("?category=cat&window=24h#advisor")
    policy = Policy.objects.get(category=advised.category)
    assert (policy.version, policy.auto_threshold) == (2, 0.8)
    latest = policy.history.first()
    assert latest.history_change_reason.startswith("Fewer reviews, same error [advisor over 24h")
    assert latest.history_user == advised.owner
    assert any("Policy version 2 of cat" in text for text in messages_of(response))


def test_adopting_is_refused_without_the_grant(advised: Story) -> None:
    for user in (advised.reviewer, advised.curator):
        response = adopt(login(user), "0.80")
        assert response.status_code == 302
        assert any("needs governance.change_category" in text for text in messages_of(response))
    assert Policy.objects.get(category=advised.category).version == 1


def test_adopting_is_refused_without_a_reason(advised: Story) -> None:
    response = adopt(login(advised.owner), "0.80", reason="   ")

    assert any("A reason is required" in text for text in messages_of(response))
    assert Policy.objects.get(category=advised.category).version == 1


def test_a_thin_row_says_too_little_data_and_has_no_form(advised: Story) -> None:
    client = login(advised.owner)
    page = client.get(URL, {"category": "cat"})
    thin = next(r for r in board_of(page).advisor if r["threshold"] == 0.9)

    assert not thin["enough_data"] and not thin["adoptable"]
    html = page.content.decode()
    row_html = html[html.index('id="advisor-0.95"') :].split("</tr>")[0]
    assert "too little data (2 of 30 known)" in row_html
    assert "<form" not in row_html
    response = adopt(client, "0.95")
    assert any("Too little data to advise 0.95" in text for text in messages_of(response))
    assert Policy.objects.get(category=advised.category).version == 1


def test_rows_the_policy_cannot_take_have_no_form(advised: Story) -> None:
    board = board_of(login(advised.owner).get(URL, {"category": "cat"}))
    rows = {r["threshold"]: r for r in board.advisor}

    assert rows[0.9]["current"] and not rows[0.9]["adoptable"]
    assert rows[0.6]["enough_data"] and not rows[0.6]["adoptable"]
    assert "review threshold" in rows[0.6]["note"]


# --- trends and cost ---


def test_trends_sum_each_buckets_parts_over_its_wholes(story: Story) -> None:
    from metrics.dashboard.trends import snapshot_trend
    from metrics.models import MetricSnapshot

    now = timezone.now()
    window = Window.last("7d", now)
    day = hour_start(now) - timedelta(days=2)
    common = {"auto": 0, "escalated": 0, "waited": 0, "breaches": 0, "audits": 0, "confirmed": 0, "seconds_spent": 0}
    for offset, (verdicts, overridden) in enumerate([(10, 1), (30, 9)]):
        MetricSnapshot.objects.create(
            category=story.category,
            hour=day.replace(hour=offset + 1),
            volume=5,
            verdicts=verdicts,
            overridden=overridden,
            time_saved_minutes=2.5,
            figures={"routes": {"auto": 0, "quick_review": 5, "full_review": 0, "shadow": 0}},
            **common,
        )
    trend = snapshot_trend(story.category, window)
    index = trend.labels.index(timezone.localtime(day).strftime("%d %b"))

    assert trend.series["override_rate"][index] == pytest.approx(10 / 40)  # not the mean of 10 % and 30 %
    assert trend.series["volume"][index] == 10 and trend.routes["quick_review"][index] == 10
    assert trend.series["override_rate"][index - 1] is None  # nothing to count is a gap, not 0
    assert trend.snapshots == 2


def _queries(client: Client) -> int:
    # Without the cached sums of stored parts: the most a page can cost (the cache only saves queries).
    caches["kpis"].clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, {"category": "cat", "window": "7d"}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["owner", "reviewer"])
def test_the_page_costs_the_same_queries_for_small_and_larger_data(story: Story, who: str, make_user: Any) -> None:
    client = login(story.owner if who == "owner" else story.second)
    # One snapshot hour already, as on any site where the hourly job runs: both counts read the snapshots.
    snapshot_hour(story.category, hour_start(timezone.now()) - HOUR * 30)
    _queries(client)  # warm the per-process caches (content types)
    small = _queries(client)

    third = make_user("rev3", roles=["Reviewer"], is_staff=True)
    grant_queue(third, Queue.objects.get(slug="cat-quick"))
    third = _fresh(third)
    from governance.services import register_model_version

    register_model_version(category=story.category, name="model", version="2", user=None, status="canary", reason="t")
    for index in range(40):
        case = make_case(
            story.category,
            confidence=0.6 + (index % 40) / 100,
            model_version="model@2" if index % 3 else "model@1",
            segment={"channel": f"c{index % 5}", "tier": f"t{index % 4}"},
        )
        if case.route == "quick_review":
            review.decide(case=case, user=third if index % 2 else story.second, action="approve", seconds_spent=9)
    now = timezone.now()
    for back in range(1, 30):
        snapshot_hour(story.category, hour_start(now) - HOUR * back)

    assert _queries(client) == small


def test_hourly_trends_keep_the_snapshots_hours_in_a_zone_half_an_hour_off_utc(story: Story, settings: Any) -> None:
    from metrics.dashboard.trends import snapshot_trend
    from metrics.models import MetricSnapshot

    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: its local hours would cut each snapshot hour in two
    now = timezone.now()
    hour = hour_start(now) - 3 * HOUR
    common = {"auto": 0, "escalated": 0, "waited": 0, "breaches": 0, "audits": 0, "confirmed": 0, "seconds_spent": 0}
    MetricSnapshot.objects.create(
        category=story.category, hour=hour, volume=7, verdicts=4, overridden=1, time_saved_minutes=1.0, **common
    )
    trend = snapshot_trend(story.category, Window.last("24h", now))

    index = trend.labels.index(timezone.localtime(hour).strftime("%H:%M"))
    assert trend.labels[index].endswith(":30")
    assert trend.series["volume"][index] == 7 and trend.series["override_rate"][index] == 0.25
    assert trend.snapshots == 1


def test_model_version_figures_join_nothing_so_postgresql_never_runs_a_subquery_per_case() -> None:
    """An aggregate over joined cases put with_kpis's decision subqueries in the GROUP BY, which PostgreSQL ran
    once per case: the dashboard timed out at 10,000 decisions (bench/kpis.py). Each figure is now a subquery."""
    sql = str(with_kpis(ModelVersion.objects.all(), Window.last("30d")).query)
    assert "LEFT OUTER JOIN" not in sql and "GROUP BY" not in sql.split("FROM", 1)[0]
