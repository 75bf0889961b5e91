"""bench/intake.py's bulk phases in this process, without HTTP: `cases.services.submit_cases` on batches of
the last round's rows, and a plain ORM `bulk_create` of the same rows (alone, or with the history and audit rows
intake also stores), to say how far the bulk API is from the service and from the ORM.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from common import BenchError
from intake_cases import BULK_BATCH, Fixture, intake_item
from intake_http import cases_in_table, rate_summary


def run_submit_cases(fixture: Fixture, batches: list[list[dict[str, Any]]], quiet: bool) -> dict[str, Any]:
    from django.contrib.auth.models import User

    from cases.services.intake import submit_cases
    from governance.models import Category

    category = Category.objects.get(pk=fixture.category_id)
    user = User.objects.get(pk=fixture.user_id)
    before = cases_in_table()
    times: list[float] = []
    for i, batch in enumerate(batches, 1):
        items = [intake_item(body, category) for body in batch]
        start = time.perf_counter()
        results = submit_cases(user=user, items=items)
        elapsed = time.perf_counter() - start
        if sum(created for _, created in results) != BULK_BATCH:
            raise BenchError("submit_cases did not create every case of a fresh batch.")
        times.append(elapsed)
        if not quiet:
            print(f"  submit_cases: batch {i}/{len(batches)}  {elapsed * 1000:.0f} ms", flush=True)
    return {**rate_summary(times), "cases_in_table_before": before}


def run_bulk_create(
    fixture: Fixture, batches: list[list[dict[str, Any]]], quiet: bool, *, with_history_and_audit: bool = False
) -> dict[str, Any]:
    """Plain ORM `bulk_create` of the case rows; with_history_and_audit also bulk-creates the other rows intake
    stores for each case (its simple-history row and its audit event), with no routing, checks or hash chain."""
    from django.utils import timezone

    from cases.models import Case, Queue
    from cases.services.intake import segment_key
    from governance.models import AuditEvent, Category, ModelVersion

    category = Category.objects.get(pk=fixture.category_id)
    model_version = ModelVersion.objects.get(pk=fixture.model_version_id)
    queue = Queue.objects.get(pk=fixture.quick_queue_id)
    before = cases_in_table()
    times: list[float] = []
    for i, batch in enumerate(batches, 1):
        now = timezone.now()
        cases = []
        for body in batch:
            item = intake_item(body, category)
            cases.append(
                Case(
                    category=category,
                    external_id=item.external_id,
                    input=item.input,
                    output=item.output,
                    confidence=body["confidence"],  # the bench's bodies always carry their own answer
                    model_version=model_version,
                    rules_fired=item.rules_fired,
                    value=item.value,
                    segment=item.segment,
                    segment_key=segment_key(item.segment),
                    customer_ref=item.customer_ref,
                    priority=item.priority,
                    route="quick_review",
                    route_reasons=["Confidence is below the auto threshold."],
                    policy_version=1,
                    audit_sampled=False,
                    audit_draw={},
                    queue=queue,
                    due_at=now + timedelta(hours=24),
                    status="queued",
                )
            )
        start = time.perf_counter()
        Case.objects.bulk_create(cases, batch_size=BULK_BATCH)
        if with_history_and_audit:
            Case.history.bulk_history_create(cases, batch_size=BULK_BATCH, default_change_reason="bench")
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        seq=10**12 + i * BULK_BATCH + n,  # far above the real chain; the scratch DB is dropped after
                        created_at=now,
                        kind="case.routed",
                        actor_username="bench",
                        category_slug=category.slug,
                        case_id=case.pk,
                        payload={"route": case.route, "reasons": case.route_reasons, "queue": queue.slug},
                        prev_hash="0" * 64,
                        hash=f"{10**12 + i * BULK_BATCH + n:064x}",
                    )
                    for n, case in enumerate(cases)
                ],
                batch_size=BULK_BATCH,
            )
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        label = "bulk_create (cases+history+audit)" if with_history_and_audit else "bulk_create"
        if not quiet:
            print(f"  {label}: batch {i}/{len(batches)}  {elapsed * 1000:.0f} ms", flush=True)
    return {**rate_summary(times), "cases_in_table_before": before}
