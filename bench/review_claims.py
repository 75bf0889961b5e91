"""bench/review.py's claim-next phases: one reviewer alone, then all of them at the same instant, in one queue
or two, back to back or paced; each phase's checks that no case was claimed twice or taken from its holder, and
its claimed cases put back in the queue so the phases compare.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import datetime
from typing import Any

from common import BenchError
from common_measure import latency_summary, percentile
from review_claim_workers import ClaimWorker, LockWaitSampler, run_workers
from review_fixture import Fixture


def held_by_others(queue_id: int) -> set[int]:
    """Cases of the queue under a claim that outlasts the claim phase (claim-next must not take them)."""
    from datetime import timedelta

    from django.utils import timezone

    from cases.models import Case

    outlasting = timezone.now() + timedelta(minutes=10)
    return set(
        Case.objects.filter(queue_id=queue_id, claimed_by__isnull=False, claimed_until__gt=outlasting)
        .order_by()
        .values_list("pk", flat=True)
    )


def verify_claims(workers: list[ClaimWorker], held_before: set[int], since: datetime) -> dict[str, Any]:
    """No double claim: each id returned once, held in the database by the reviewer it was returned to, with
    exactly one "Claimed (next in queue)" history row since the phase began, and none taken from another holder."""
    from django.db.models import Count

    from cases.models import Case

    claimed = [pk for w in workers for pk in w.claimed]
    owner = {pk: w.user_id for w in workers for pk in w.claimed}
    duplicates = sorted(pk for pk, c in Counter(claimed).items() if c > 1)
    rows = dict(Case.objects.filter(pk__in=claimed).values_list("pk", "claimed_by_id"))
    statuses = Counter(Case.objects.filter(pk__in=claimed).values_list("status", flat=True))
    wrong_holder = sorted(pk for pk in set(claimed) if rows.get(pk) != owner[pk])
    history = (
        Case.history.filter(id__in=claimed, history_change_reason="Claimed (next in queue)", history_date__gte=since)
        .values("id")
        .annotate(n=Count("history_id"))
    )
    claimed_twice_in_history = sorted(h["id"] for h in history if h["n"] != 1)
    history_ids = {h["id"] for h in history}
    return {
        "claimed": len(claimed),
        "distinct": len(set(claimed)),
        "empty_results": sum(w.empty for w in workers),
        "errors": [w.error for w in workers if w.error],
        "duplicate_ids": duplicates[:20],
        "held_by_wrong_user": wrong_holder[:20],
        "statuses": dict(statuses),
        "history_rows_not_one": claimed_twice_in_history[:20],
        "without_history_row": sorted(set(claimed) - history_ids)[:20],
        "taken_from_other_holders": sorted(set(claimed) & held_before)[:20],
    }


def give_back(case_ids: list[int]) -> None:
    """Put the cases a phase claimed back in the queue (plain SQL: the benchmark's bookkeeping, not a release),
    so every phase starts from the same queue. Their claim history rows stay."""
    from django.db import connection

    if case_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE cases_case SET status = 'queued', claimed_by_id = NULL, claimed_until = NULL "
                "WHERE id = ANY(%s)",
                [case_ids],
            )


def grant_queue_to(user_ids: list[int], queue_id: int) -> None:
    """`cases.work_queue` on one more queue for these reviewers (guardian, as the admin grants it)."""
    from django.contrib.auth.models import User
    from guardian.shortcuts import assign_perm

    from cases.models import Queue

    queue = Queue.objects.get(pk=queue_id)
    for user in User.objects.filter(pk__in=user_ids):
        assign_perm("cases.work_queue", user, queue)


def contended(
    fx: Fixture,
    args: argparse.Namespace,
    *,
    think_ms: float,
    mode: str,
    kinds: tuple[str, ...] = ("quick",),
    burst: bool = False,
) -> dict[str, Any]:
    """One reviewer per process (or thread), started together, each claiming `claims_per_thread` times from one
    of the queues of `kinds` (dealt round robin): in bursts (`burst`: every reviewer's next claim at the same
    instant, round after round), back to back, or paced (`think_ms`). Then the checks, and the claimed cases go
    back to the queue."""
    from django.utils import timezone

    from cases.models import Queue
    from reviews.services import claimable_in

    queue_ids = [fx.queues[kind] for kind in kinds]
    needed = args.threads * args.claims_per_thread
    per_queue = {queue_id: 0 for queue_id in queue_ids}
    for i in range(args.threads):
        per_queue[queue_ids[i % len(queue_ids)]] += args.claims_per_thread + 1  # and the warm-up claim
    held_before: set[int] = set()
    available = 0
    for queue_id, wanted in per_queue.items():
        queue = Queue.objects.get(pk=queue_id)
        here = claimable_in(queue, timezone.now()).count()
        if here < wanted:
            raise BenchError(f"{queue.slug} has {here} claimable cases; {wanted} claims need more (a larger size).")
        available += here
        held_before |= held_by_others(queue_id)
    pace = (
        f", pausing ~{think_ms:g} ms between claims"
        if think_ms
        else ", all at the same instant, round after round"
        if burst
        else ", back to back"
    )
    print(
        f"claim-next under contention: {args.threads} {mode} x {args.claims_per_thread} calls{pace} "
        f"in {' and '.join(kinds)} ({available} claimable, {len(held_before)} held by others) ...",
        flush=True,
    )
    workers = [
        ClaimWorker(
            user_id=uid,
            queue_id=queue_ids[i % len(queue_ids)],
            calls=args.claims_per_thread,
            think_ms=think_ms,
            burst=burst,
            seed=args.seed + i,
        )
        for i, uid in enumerate(fx.claim_reviewer_ids)
    ]
    since = timezone.now()
    with LockWaitSampler() as lock_waits:
        run_workers(workers, mode)
    wall = max(w.ended for w in workers) - min(w.started for w in workers) if all(w.ended for w in workers) else 0
    all_ms = [ms for w in workers for ms in w.ms]
    all_sql = [ms for w in workers for ms in w.sql_ms]
    check = verify_claims(workers, held_before, since)
    ok = (
        not check["errors"]
        and not check["duplicate_ids"]
        and not check["held_by_wrong_user"]
        and not check["history_rows_not_one"]
        and not check["without_history_row"]
        and not check["taken_from_other_holders"]
        and check["claimed"] == check["distinct"] == needed
        and check["empty_results"] == 0
        # Each worker marks a case decided once claim-next returned it (`ClaimWorker.run`): none left "claimed".
        and set(check["statuses"]) <= {"approved"}
    )
    give_back([pk for w in workers for pk in w.claimed + w.warmed])
    summary = latency_summary(all_ms) if all_ms else {}
    if not ok:
        print(f"  claim-next checks FAILED: {check}", flush=True)
    print(
        f"  {check['claimed']} claims in {wall:.2f} s: p50 {summary.get('p50_ms', float('nan')):.1f} ms, "
        f"p99 {summary.get('p99_ms', float('nan')):.1f} ms; double claims: {len(check['duplicate_ids'])}; "
        f"checks {'passed' if ok else 'FAILED'}",
        flush=True,
    )
    return {
        **summary,
        "sql": latency_summary(all_sql) if all_sql else {},
        "wall_s": round(wall, 3),
        "claims_per_s": round(len(all_ms) / wall, 1) if wall else None,
        "mode": mode,
        "queues": list(kinds),
        "lock_waits": lock_waits.summary(),
        "threads": args.threads,
        "calls_per_thread": args.claims_per_thread,
        "think_ms": think_ms,
        "verification": {**check, "ok": ok, "held_by_others_before": len(held_before)},
    }


def run_claims(fx: Fixture, args: argparse.Namespace) -> dict[str, Any]:
    print(f"claim-next alone: {args.claims_per_thread} calls by one reviewer ...", flush=True)
    alone = ClaimWorker(user_id=fx.page_reviewer_id, queue_id=fx.queues["quick"], calls=args.claims_per_thread)
    run_workers([alone], "threads")
    if alone.error:
        raise BenchError(f"claim_next failed: {alone.error}")
    give_back(alone.claimed + alone.warmed)
    print(f"  p50 {percentile(sorted(alone.ms), 50):.1f} ms, p99 {percentile(sorted(alone.ms), 99):.1f} ms", flush=True)
    result: dict[str, Any] = {"alone": {**latency_summary(alone.ms), "sql": latency_summary(alone.sql_ms)}}
    # Reviewers in processes, as gunicorn's workers serve them: threads of one Python process would measure its GIL
    # (each claim waiting for the other 19 threads' Python), not the claims (`--claim-threads` shows that too).
    result["contended"] = contended(fx, args, think_ms=0.0, mode="processes", burst=True)
    if args.claim_threads:
        result["contended_threads"] = contended(fx, args, think_ms=0.0, mode="threads")
    # Half the reviewers in the quick queue, half in the full one, at once: neither queue's claims wait on the other's.
    grant_queue_to(fx.claim_reviewer_ids[1::2], fx.queues["full"])
    result["two_queues"] = contended(fx, args, think_ms=0.0, mode="processes", kinds=("quick", "full"), burst=True)
    if args.think_ms:
        result["paced"] = contended(fx, args, think_ms=args.think_ms, mode="processes")
    return result
