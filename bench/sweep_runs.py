"""bench/sweep.py's sweeps: the optional rehearsal under cProfile (rolled back), each timed sweep with its
statements recorded and the WAL written meanwhile, the checks of what the first one wrote (breaches, history,
the audit chains link by link, the cases moved, the held and stale ones untouched), and the three sweeps in
turn (the first, one right after, one with nothing to do).
"""

from __future__ import annotations

import gc
import time
from datetime import datetime
from typing import Any

from common import BenchError
from common_measure import QueryLog, profile_text
from sweep_breakdown import breakdown
from sweep_data import WRITTEN_TABLES
from sweep_fixture import DUE_GAP, Fixture, Mix

# --- The sweep ------------------------------------------------------------------------------------------------


def rehearsal(profile_top: int) -> dict[str, Any]:
    """A sweep in a transaction rolled back, under cProfile (so slower than the timed one), then VACUUM of the
    tables it wrote: where the Python time goes, by function. Its on_commit notices never run."""
    import cProfile

    from django.db import connection, transaction

    from cases.services.sla import sweep

    profiler = cProfile.Profile()
    log = QueryLog()
    with transaction.atomic():
        with connection.execute_wrapper(log):
            log.t0 = time.perf_counter()
            profiler.enable()
            result = sweep()
            profiler.disable()
            seconds = time.perf_counter() - log.t0
        transaction.set_rollback(True)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE " + ", ".join(WRITTEN_TABLES))
    vacuum_s = time.perf_counter() - t0
    texts = {key: profile_text(profiler, key, profile_top) for key in ("tottime", "cumulative")}
    print(
        f"  rehearsal (rolled back, under cProfile): {seconds:.3f} s, {result.as_dict()['moved']} moved; "
        f"VACUUM afterwards {vacuum_s:.1f} s",
        flush=True,
    )
    return {
        "seconds_under_profile": round(seconds, 3),
        "result": result.as_dict(),
        "vacuum_seconds": round(vacuum_s, 1),
        **breakdown(log, seconds),
        "profile": texts,
    }


SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "synchronous_commit",
    "full_page_writes",
    "wal_compression",
    "jit",
)


def wal_stats() -> dict[str, int]:
    """The WAL position and the server's WAL counters (every session's writes, not only this one's). This
    backend's own counters are flushed first: pg_stat_force_next_flush() takes effect once it is idle."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, wal_records, wal_fpi FROM pg_stat_wal"
        )
        position, records, fpi = cursor.fetchone()
        return {"bytes": int(position), "records": int(records), "full_page_images": int(fpi)}


def wal_since(before: dict[str, int]) -> dict[str, int]:
    after = wal_stats()
    return {k: after[k] - before[k] for k in before}


def timed_sweep(now: datetime | None = None) -> tuple[Any, float, QueryLog, dict[str, int], float]:
    """One sweep() (at `now`, else the current time) with every statement recorded; and the WAL the server wrote
    meanwhile (read outside the timing; other sessions' writes count too, so it is an upper bound on a shared
    server); and the seconds this process spent collecting garbage during the sweep."""
    from django.db import connection

    from cases.services.sla import sweep

    log = QueryLog()
    wal = wal_stats()
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        with connection.execute_wrapper(log):
            log.t0 = time.perf_counter()
            result = sweep(now=now)
            seconds = time.perf_counter() - log.t0
    finally:
        gc.callbacks.remove(pauses)
    return result, seconds, log, wal_since(wal), pauses.seconds


class GcPauses:
    """Time spent in Python's garbage collector (a gc callback): a sweep that makes 10,000 events and rows creates
    enough objects to trigger full collections, whose length depends on everything else this process holds."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def verify(
    fx: Fixture, mix: Mix, anchor: datetime, since: datetime, heads_before: dict[str, tuple[int, str]], result: Any
) -> dict[str, Any]:
    """What the first sweep wrote: one breach, history row and audit event per overdue case, every category's
    chain intact from its head before the sweep, the cases moved to escalation as urgent; the held and stale cases
    untouched."""
    from django.contrib.auth.models import User

    from cases.models import Case, SlaBreach
    from governance.choices import AuditKind
    from governance.events import GENESIS_HASH, compute_hash
    from governance.models import AuditEvent, Notification

    breaches = SlaBreach.objects.filter(detected_at__gte=since).count()
    history = Case.history.filter(history_date__gte=since, history_change_reason__startswith="SLA sweep").count()
    # One chain per category (governance.events): each must go on from its own head, link by link.
    events: list[AuditEvent] = []
    chain_ok = True
    for chain in sorted(set(heads_before) | set(chain_heads())):
        seq, prev_hash = heads_before.get(chain, (0, GENESIS_HASH))
        appended = list(AuditEvent.objects.filter(category_slug=chain, seq__gt=seq).order_by("seq"))
        for event in appended:
            if event.seq != seq + 1 or event.prev_hash != prev_hash or compute_hash(prev_hash, event) != event.hash:
                chain_ok = False
                break
            seq, prev_hash = event.seq, event.hash
        events += appended
    breach_events = sum(1 for e in events if e.kind == AuditKind.SLA_BREACHED)
    moved_now = Case.objects.filter(
        queue_id__in=fx.queues["escalation"],
        status="escalated",
        due_at__gt=anchor,
        priority="urgent",
        claimed_by__isnull=True,
    ).count()
    overdue_left = Case.objects.filter(
        status__in=("queued", "claimed"), due_at__lt=since, claimed_by__isnull=True
    ).count()
    held_left = Case.objects.filter(
        queue_id__in=fx.queues["quick"] + fx.queues["full"],
        status="claimed",
        due_at__lt=anchor,
        claimed_until__gt=since,
    ).count()
    stale_left = Case.objects.filter(
        queue_id__in=fx.queues["escalation"], status="escalated", due_at__lt=anchor
    ).count()
    notices = Notification.objects.filter(created_at__gte=since).count()
    checks = {
        "breaches_written": breaches,
        "history_rows_written": history,
        "audit_events_written": len(events),
        "sla_breached_events": breach_events,
        "audit_chain_links_and_hashes_ok": chain_ok,
        "moved_cases_now_urgent_in_escalation": moved_now,
        "overdue_unclaimed_left_in_quick_full": overdue_left,
        "held_overdue_left_with_their_reviewer": held_left,
        "stale_escalated_left_in_place": stale_left,
        "notifications_written": notices,
        "system_user_exists": User.objects.filter(username="system").exists(),
    }
    checks["ok"] = (
        result.moved == mix.overdue
        and result.breached == mix.overdue
        and breaches == history == breach_events == mix.overdue
        and chain_ok
        and moved_now == mix.overdue
        and overdue_left == 0
        and held_left == mix.held
        and stale_left == mix.stale
    )
    return checks


def chain_heads() -> dict[str, tuple[int, str]]:
    """Where each audit chain ends: chain -> (seq, hash)."""
    from governance.models import AuditChainHead

    return {chain: (seq, hash_) for chain, seq, hash_ in AuditChainHead.objects.values_list("chain", "seq", "hash")}


def run_sweeps(fx: Fixture, mix: Mix, anchor: datetime) -> dict[str, Any]:
    from django.utils import timezone

    heads = chain_heads()
    since = timezone.now()
    drift = since - anchor
    if drift >= DUE_GAP:
        raise BenchError(
            f"{drift} passed since the data's anchor: cases meant not to be overdue are. Generation too slow?"
        )
    print(f"Sweep 1: cases.services.sla.sweep() over {mix.open:,} open cases, {mix.overdue:,} overdue ...", flush=True)
    first, seconds, log, wal, gc_s = timed_sweep()
    print(f"  {seconds:.3f} s: {first.as_dict()}; {len(log.entries)} statements", flush=True)
    checks = verify(fx, mix, anchor, since, heads, first)
    print(f"  checks {'passed' if checks['ok'] else 'FAILED'}: {checks}", flush=True)
    print("Sweep 2: cases.services.sla.sweep() again ...", flush=True)
    second_at = timezone.now()
    second, seconds2, log2, wal2, gc2 = timed_sweep(second_at)
    print(f"  {seconds2:.3f} s: {second.as_dict()}; {len(log2.entries)} statements", flush=True)
    print("Sweep 3: at the second's instant, with nothing to do ...", flush=True)
    idle, seconds3, log3, wal3, gc3 = timed_sweep(second_at)
    print(f"  {seconds3:.3f} s: {idle.as_dict()}; {len(log3.entries)} statements", flush=True)
    return {
        "anchor": anchor.isoformat(),
        "minutes_from_anchor_to_sweep": round(drift.total_seconds() / 60, 2),
        "first": {
            "seconds": round(seconds, 4),
            "gc_ms": round(gc_s * 1000, 1),
            "wal": wal,
            "result": first.as_dict(),
            **breakdown(log, seconds),
            "checks": checks,
        },
        "second": {
            "seconds": round(seconds2, 4),
            "gc_ms": round(gc2 * 1000, 1),
            "wal": wal2,
            "result": second.as_dict(),
            **breakdown(log2, seconds2),
        },
        "idle": {
            "seconds": round(seconds3, 4),
            "gc_ms": round(gc3 * 1000, 1),
            "wal": wal3,
            "result": idle.as_dict(),
            **breakdown(log3, seconds3),
        },
    }
