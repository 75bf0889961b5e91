"""bench/review.py's pages: which URLs the reviewer's queue page and review page are (the reviewer pages in
the URLconf, or the cases admin as a fallback), and timing them with Django's test client in this process, with
their SQL statements counted and timed.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from common import BenchError
from common_measure import QueryLog, latency_summary, percentile, sql_shape
from review_fixture import Fixture

REVIEW_PAGE_CASES = 200
EXPLAIN_TOP = 2

FALLBACK_QUEUE_URL = "/admin/cases/case/?queue={queue_id}&status__exact=queued&o=-6.10"
FALLBACK_CASE_URL = "/admin/cases/case/{case_id}/change/"


# --- Pages ----------------------------------------------------------------------------------------------------


def reviewer_routes() -> list[str]:
    """Every URL route under admin/reviews/work/ in the URLconf as it is now."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and "reviews/work/" in route:
                found.append("/" + route.lstrip("^").rstrip("$"))

    walk(get_resolver().url_patterns, "")
    return found


def _template_from_route(route: str, placeholder_for: dict[str, str]) -> str | None:
    """'/admin/reviews/work/queue/<slug:slug>/' -> '/admin/reviews/work/queue/{queue_slug}/' (None if unsure)."""
    import re

    parameters = re.findall(r"<(?:(\w+):)?(\w+)>", route)
    if len(parameters) != 1:
        return None
    converter = parameters[0][0] or "str"
    placeholder = placeholder_for.get(converter)
    if placeholder is None:
        return None
    return re.sub(r"<[^>]+>", placeholder, route)


def discover_urls(queue_url: str, case_url: str) -> dict[str, Any]:
    """The reviewer pages if the URLconf has them (queue list: '.../queue/<param>/'; review page:
    '.../case/<int>/'), else the cases admin's changelist and change page. Explicit templates win."""
    routes = reviewer_routes()
    found_queue = found_case = None
    for route in sorted(routes, key=len):
        tail = route.split("reviews/work/", 1)[1]
        if found_queue is None and tail.startswith("queue") and tail.count("/") == 2:
            found_queue = _template_from_route(
                route, {"int": "{queue_id}", "slug": "{queue_slug}", "str": "{queue_slug}"}
            )
        if found_case is None and tail.startswith("case") and tail.count("/") == 2:
            found_case = _template_from_route(route, {"int": "{case_id}", "str": "{case_id}"})
    queue = queue_url if queue_url != "auto" else (found_queue or FALLBACK_QUEUE_URL)
    case = case_url if case_url != "auto" else (found_case or FALLBACK_CASE_URL)
    return {
        "reviewer_routes_found": routes,
        "queue_url": queue,
        "case_url": case,
        "queue_source": "option" if queue_url != "auto" else ("reviewer page" if found_queue else "fallback"),
        "case_source": "option" if case_url != "auto" else ("reviewer page" if found_case else "fallback"),
    }


def measure_page(name: str, client: Any, urls: list[str], requests: int, warmup: int) -> dict[str, Any]:
    """GET the urls in turn: the time of each request, its SQL statements (counted by CaptureQueriesContext, timed
    by an execute wrapper), and the slowest statement shapes over all requests (for EXPLAIN)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get(url: str) -> Any:
        response = client.get(url)
        if response.status_code != 200:
            raise BenchError(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")
        return response

    for k in range(warmup):
        get(urls[k % len(urls)])
    times: list[float] = []
    sql_times: list[float] = []
    counts: list[int] = []
    sizes: list[int] = []
    last: list[dict[str, Any]] = []
    slowest: dict[str, tuple[float, str]] = {}  # statement shape -> (slowest ms, that statement)
    progress_every = max(requests // 4, 1)
    for k in range(requests):
        url = urls[k % len(urls)]
        log = QueryLog()
        with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(log):
            t0 = time.perf_counter()
            response = get(url)
            elapsed = time.perf_counter() - t0
        times.append(elapsed * 1000)
        sql_times.append(log.seconds * 1000)
        counts.append(len(ctx.captured_queries))
        sizes.append(len(response.content))
        statements = [q["sql"] for q in ctx.captured_queries]
        if len(statements) == len(log.entries):  # the same statements, in the same order
            timed = [(entry.seconds * 1000, sql) for entry, sql in zip(log.entries, statements, strict=True)]
        else:
            timed = [(float(q["time"]) * 1000, q["sql"]) for q in ctx.captured_queries]
        for ms, sql in timed:
            shape = sql_shape(sql)
            if ms > slowest.get(shape, (-1.0, ""))[0]:
                slowest[shape] = (ms, sql)
        last = [{"ms": round(ms, 2), "sql": sql[:300]} for ms, sql in timed]
        if (k + 1) % progress_every == 0:
            so_far = sorted(times)
            print(
                f"  {name}: {k + 1}/{requests}  p50 {percentile(so_far, 50):.1f} ms, "
                f"p95 {percentile(so_far, 95):.1f} ms, {counts[-1]} queries",
                flush=True,
            )
    top = sorted(slowest.values(), key=lambda t: -t[0])[:EXPLAIN_TOP]
    return {
        "url_example": urls[0],
        "distinct_urls": len(set(urls)),
        **latency_summary(times),
        "sql": latency_summary(sql_times),
        "queries_min": min(counts),
        "queries_max": max(counts),
        "query_counts": dict(sorted(Counter(counts).items())),
        "response_kib_mean": round(sum(sizes) / len(sizes) / 1024, 1),
        "statements_of_last_request": last,
        "slowest_statements": [{"ms": round(ms, 2), "sql": sql[:300]} for ms, sql in top],
        "slowest_sql": [sql for _, sql in top],
    }


def probe(client: Any, url: str) -> str | None:
    """Why this page cannot be measured (an error or a status other than 200), or None."""
    import logging

    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.CRITICAL)  # the traceback of a page being built is not this benchmark's output
    try:
        response = client.get(url)
    except Exception as exc:  # a page being built: fall back to the cases admin
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        request_log.setLevel(level)
    return None if response.status_code == 200 else f"status {response.status_code}"


def run_pages(fx: Fixture, args: argparse.Namespace, urls: dict[str, Any]) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.test import Client

    from cases.models import Queue
    from reviews.services import claimable_in

    user = User.objects.get(pk=fx.page_reviewer_id)
    queue = Queue.objects.get(pk=fx.queues["quick"])
    from django.utils import timezone

    case_ids = list(claimable_in(queue, timezone.now()).values_list("pk", flat=True)[:REVIEW_PAGE_CASES])
    if not case_ids:
        raise BenchError("The quick queue has no waiting case to open.")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    fields = {"queue_id": queue.pk, "queue_slug": queue.slug}
    for kind, fallback, example in (
        ("queue", FALLBACK_QUEUE_URL, {"case_id": ""}),
        ("case", FALLBACK_CASE_URL, {"case_id": case_ids[0]}),
    ):
        if urls[f"{kind}_source"] != "reviewer page":
            continue
        problem = probe(client, urls[f"{kind}_url"].format(**fields, **example))
        if problem:
            print(f"  the reviewer {kind} page does not work yet ({problem}); using {fallback}", flush=True)
            urls[f"{kind}_url"], urls[f"{kind}_source"] = fallback, f"fallback ({problem})"
    queue_urls = [urls["queue_url"].format(**fields, case_id="")]
    case_urls = [urls["case_url"].format(**fields, case_id=pk) for pk in case_ids]
    print(f"Queue page {queue_urls[0]} ({urls['queue_source']}): {args.requests} requests ...", flush=True)
    queue_page = measure_page("queue page", client, queue_urls, args.requests, args.warmup)
    print(
        f"Review page {urls['case_url']} ({urls['case_source']}) over {len(case_urls)} cases: "
        f"{args.requests} requests ...",
        flush=True,
    )
    review_page = measure_page("review page", client, case_urls, args.requests, args.warmup)
    return {"queue_page": queue_page, "review_page": review_page}
