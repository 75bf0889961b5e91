"""bench/kpis.py's pages: the metrics API and the dashboard page, their SQL statements counted in this
process with Django's test client (statements cancelled after gunicorn's timeout), then their round trips
through gunicorn; a dashboard answering 404 (not in this build yet) is skipped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from typing import Any

from common import BenchError
from common_measure import QueryLog, latency_summary, sql_shape
from common_server import HttpClient, Server
from kpis_fixture import Fixture

MIN_REQUESTS = 5
PAGE_TIMEOUT_SECONDS = 120  # gunicorn's --timeout (common_server.Server); page statements are cancelled after it too


# --- Pages: through gunicorn, and their queries in this process -----------------------------------------------


def get_in_process(client: Any, path: str) -> dict[str, Any]:
    """One GET with Django's test client: its status, SQL statements and time. A request that raises (a statement
    cancelled by the timeout, say) is an answer too, status 500: a page that fails is measured as failing."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    log = QueryLog()
    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(log):
        t0 = time.perf_counter()
        try:
            response = client.get(path)
            status, body = response.status_code, response.content
        except Exception as exc:  # reported as the page's answer, and the run goes on
            status, body = 500, f"{type(exc).__name__}: {exc}".encode()
        elapsed = time.perf_counter() - t0
    slowest = sorted(log.entries, key=lambda e: -e.seconds)[:3]
    return {
        "status": status,
        "queries": len(ctx.captured_queries),
        "total_ms": round(elapsed * 1000, 1),
        "sql_ms": round(log.seconds * 1000, 1),
        "slowest_statements": [{"ms": round(e.seconds * 1000, 1), "sql": sql_shape(e.sql)} for e in slowest],
        "body": body,
    }


def in_process(client: Any, path: str, box: float) -> dict[str, Any]:
    """The page's SQL statements and time in this process: a first GET (cold caches, one-off lookups), then a second,
    the figure; only the first when it failed or took longer than the time box. Statements are cancelled after
    PAGE_TIMEOUT_SECONDS, as gunicorn's worker would be."""
    import logging

    from django.db import connection

    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.CRITICAL)  # a 404 of a page not merged yet is not this benchmark's output
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [f"{PAGE_TIMEOUT_SECONDS}s"])
    try:
        first = get_in_process(client, path)
        if first["status"] != 200 or first["total_ms"] > box * 1000:
            return {**first, "cold": True}
        return {**get_in_process(client, path), "cold": False, "first_ms": first["total_ms"]}
    finally:
        request_log.setLevel(level)
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


def over_http(name: str, client: HttpClient, path: str, args: argparse.Namespace) -> dict[str, Any]:
    """--warmup then --requests sequential GETs: round trips in ms, p50/p95/max. An answer other than 200, or none
    (gunicorn's worker timed out), ends the series with an error."""
    ms: list[float] = []
    sizes: list[int] = []
    result: dict[str, Any] = {"path": path, "requests_planned": args.requests}
    start = time.perf_counter()
    for k in range(-args.warmup, args.requests):
        if k >= MIN_REQUESTS and time.perf_counter() - start > args.time_box:
            print(f"  {name}: time box of {args.time_box:g} s reached after {k} requests", flush=True)
            break
        if k == 0:
            client.closed_by_server = 0
            start = time.perf_counter()
        try:
            status, data, seconds = client.get(path)
        except (OSError, http.client.HTTPException) as exc:
            result["error"] = f"no answer ({type(exc).__name__}: {exc}); gunicorn's timeout is {PAGE_TIMEOUT_SECONDS} s"
            break
        if status != 200:
            result["error"] = f"status {status}: {data[:200]!r}"
            break
        if k < 0:
            continue
        ms.append(seconds * 1000)
        sizes.append(len(data))
        if (k + 1) % 10 == 0:
            so_far = latency_summary(ms, (50, 95))
            print(f"  {name}: {k + 1}/{args.requests}  p50 {so_far['p50_ms']:.0f} ms, p95 {so_far['p95_ms']:.0f} ms")
    if "error" in result:
        print(f"  {name} through gunicorn: {result['error']}", flush=True)
        client.close()
    if ms:
        result |= {
            **latency_summary(ms, (50, 95), digits=1),
            "response_kib": round(sum(sizes) / len(sizes) / 1024, 1),
            "closed_by_server": client.closed_by_server,
        }
    return result


def measure_pages(fx: Fixture, server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """The API endpoint, and the dashboard page if this build has it."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    fields = {"slug": fx.category_slug, "window": args.window}
    api_path, dashboard_path = args.api_url.format(**fields), args.dashboard_url.format(**fields)

    api_client = Client(HTTP_AUTHORIZATION=f"Token {fx.token}", HTTP_HOST="127.0.0.1")
    api_local = in_process(api_client, api_path, args.time_box)
    body = api_local.pop("body")
    if api_local["status"] != 200:
        raise BenchError(f"GET {api_path} answered {api_local['status']} in this process: {body[:300]!r}")
    answer = json.loads(body)
    print(
        f"GET {api_path}: {api_local['queries']} queries in this process ({api_local['total_ms']:.0f} ms); "
        f"through gunicorn: {args.warmup} warm-up, {args.requests} timed ...",
        flush=True,
    )
    api = {"in_process": api_local, **over_http("API", HttpClient(server.port, fx.token), api_path, args)}
    api["answer"] = {"volume": answer.get("volume"), "keys": sorted(answer)}

    page_client = Client(HTTP_HOST="127.0.0.1")
    page_client.force_login(User.objects.get(pk=fx.owner_id))
    print(f"GET {dashboard_path} in this process ...", flush=True)
    page_local = in_process(page_client, dashboard_path, args.time_box)
    body = page_local.pop("body")
    dashboard: dict[str, Any] = {"path": dashboard_path, "in_process": page_local}
    if page_local["status"] == 404:
        print(
            "  it answers 404: the dashboard page is not in this build yet. Skipped; re-run this benchmark once it "
            "is merged.",
            flush=True,
        )
        return {"api": api, "dashboard": {**dashboard, "skipped": "404: the dashboard page is not in this build"}}
    if page_local["status"] != 200:
        answer = body.decode(errors="replace")[:300]
        error = f"status {page_local['status']} after {page_local['total_ms'] / 1000:.0f} s: {answer}"
        worst = page_local["slowest_statements"][0] if page_local["slowest_statements"] else None
        print(f"  a failure: {error}", flush=True)
        if worst:
            print(f"  its slowest statement ({worst['ms'] / 1000:.0f} s): {worst['sql']}", flush=True)
        return {"api": api, "dashboard": {**dashboard, "error": error}}
    cold = " (one cold request: it took longer than the time box)" if page_local["cold"] else ""
    print(
        f"  {page_local['queries']} queries ({page_local['total_ms']:.0f} ms){cold}; through gunicorn: "
        f"{args.warmup} warm-up, {args.requests} timed ...",
        flush=True,
    )
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={page_client.cookies[settings.SESSION_COOKIE_NAME].value}"}
    page_http = HttpClient(server.port, None, headers={"Accept": "text/html", **cookie})
    dashboard |= over_http("dashboard", page_http, dashboard_path, args)
    return {"api": api, "dashboard": dashboard}
