"""Where bench/intake.py's time goes, in this process after the timed phases: the SQL statements of one
single intake, one bulk request and one submit_cases batch (by shape), their time split into total and time
executing SQL, and with --profile a cProfile of each.
"""

from __future__ import annotations

import cProfile
import functools
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import BenchError
from common_measure import logged_queries, percentile, profile_text
from intake_cases import BULK_BATCH, Fixture, case_body, intake_item

if TYPE_CHECKING:
    from cases.services.intake import IntakeItem


# --- Where the time goes: SQL queries and cProfile ------------------------------------------------------------


def timed_with_sql(work: Callable[[], object]) -> dict[str, float]:
    """Wall time of `work` in this process and the part of it spent executing SQL statements."""
    with logged_queries() as log:
        start = time.perf_counter()
        work()
        total = time.perf_counter() - start
    return {"total_ms": round(total * 1000, 2), "sql_ms": round(log.seconds * 1000, 2), "statements": len(log.entries)}


def time_split(post: Callable[[str, dict[str, Any], int], None], singles: list[dict[str, Any]]) -> dict[str, Any]:
    """Per single intake in this process (no HTTP): median total time and median time executing SQL."""
    totals: list[float] = []
    sql: list[float] = []
    for body in singles:
        split = timed_with_sql(functools.partial(post, "/api/v1/cases/", body, 201))
        totals.append(split["total_ms"])
        sql.append(split["sql_ms"])
    totals.sort()
    sql.sort()
    return {
        "single_api_inprocess": {
            "requests": len(singles),
            "total_ms_p50": round(percentile(totals, 50), 2),
            "total_ms_p99": round(percentile(totals, 99), 2),
            "sql_ms_p50": round(percentile(sql, 50), 2),
        }
    }


def run_diagnostics(fixture: Fixture, rng: random.Random, *, profile: bool) -> dict[str, Any]:
    """In this process, after the timed phases (so on the table they filled), on fresh external ids:

    - queries: the SQL statements of one single intake, one bulk request and one submit_cases batch, by shape;
    - in_process: time per single intake (200, no HTTP), per bulk request and per submit_cases batch, and the part
      of it spent executing SQL;
    - with profile=True, printed: every statement shape and a cProfile (run apart, so the statement timing does not
      distort it) of 200 single intakes, one bulk request and one submit_cases batch.
    """
    from django.contrib.auth.models import User
    from django.test import Client as DjangoClient

    from cases.services.intake import submit_cases
    from governance.models import Category

    client = DjangoClient(HTTP_AUTHORIZATION=f"Token {fixture.token}", HTTP_HOST="127.0.0.1")
    category = Category.objects.get(pk=fixture.category_id)
    user = User.objects.get(pk=fixture.user_id)

    def post(path: str, data: dict[str, Any], expected: int) -> None:
        response = client.post(path, data, content_type="application/json")
        if response.status_code != expected:
            raise BenchError(f"In-process POST {path} answered {response.status_code}: {response.content[:300]!r}")

    def bulk_body(prefix: str) -> dict[str, Any]:
        return {"cases": [case_body(rng, f"{prefix}-{i:04d}") for i in range(BULK_BATCH)]}

    def service_items(prefix: str) -> list[IntakeItem]:
        return [intake_item(case_body(rng, f"{prefix}-{i:04d}"), category) for i in range(BULK_BATCH)]

    # A few unmeasured requests first, so one-off lookups (content types, caches) are not counted.
    for i in range(3):
        post("/api/v1/cases/", case_body(rng, f"diag-warm-{i}"), 201)
    from cases.models import Case

    report: dict[str, Any] = {}
    with logged_queries() as log:
        post("/api/v1/cases/", case_body(rng, "diag-single"), 201)
    report["single_api"] = log.report()
    body = bulk_body("diag-bulk")
    with logged_queries() as log:
        post("/api/v1/cases/bulk/", body, 200)
    report["bulk_api_500"] = log.report()
    items = service_items("diag-svc")
    with logged_queries() as log:
        submit_cases(user=user, items=items)
    report["submit_cases_500"] = log.report()

    split: dict[str, Any] = {"cases_in_table": Case.objects.count()}
    split.update(time_split(post, singles=[case_body(rng, f"split-{i:04d}") for i in range(200)]))
    split["bulk_api_500"] = timed_with_sql(lambda: post("/api/v1/cases/bulk/", bulk_body("split-bulk"), 200))
    items = service_items("split-svc")
    split["submit_cases_500"] = timed_with_sql(lambda: submit_cases(user=user, items=items))

    if profile:
        for name, data in report.items():
            print(f"\n--- SQL of {name}: {data['statements']} statements, {data['sql_ms']:.1f} ms executing them ---")
            for group in data["by_shape"]:
                print(f"  {group['count']:5d} x  {group['ms']:8.2f} ms  {group['sql']}")
        singles = [case_body(rng, f"prof-single-{i:04d}") for i in range(200)]
        body, items = bulk_body("prof-bulk"), service_items("prof-svc")

        def post_singles() -> None:
            for single in singles:
                post("/api/v1/cases/", single, 201)

        runs: list[tuple[str, Callable[[], object]]] = [
            ("200 single POST /api/v1/cases/ (in-process, test client)", post_singles),
            (
                "one POST /api/v1/cases/bulk/ of 500 (in-process, test client)",
                lambda: post("/api/v1/cases/bulk/", body, 200),
            ),
            ("one submit_cases of 500 (in-process)", lambda: submit_cases(user=user, items=items)),
        ]
        for title, work in runs:
            profiler = cProfile.Profile()
            profiler.runcall(work)
            print(f"\n--- cProfile: {title} ---")
            print(profile_text(profiler, "cumulative", 45))
            print(profile_text(profiler, "tottime", 15))
    # The JSON keeps only the biggest groups.
    for data in report.values():
        data["by_shape"] = data["by_shape"][:6]
    return {"queries": report, "in_process": split}
