"""bench/review.py's reviewers claiming next: one `ClaimWorker` per reviewer, run together as threads of this
process or as forked processes (as gunicorn's workers serve reviewers), and the `LockWaitSampler` counting how
often a session of the scratch database waits on a lock meanwhile.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from common_measure import QueryLog

# --- Claim-next -----------------------------------------------------------------------------------------------


@dataclass
class ClaimWorker:
    """One reviewer claiming next from the queue `calls` times (in a thread or a forked process)."""

    user_id: int
    queue_id: int
    calls: int
    barrier: Any = None  # threading.Barrier or multiprocessing's
    think_ms: float = 0.0
    burst: bool = False  # every call waits at the barrier: all workers claim at the same instant, round by round
    seed: int = 0
    warmed: list[int] = field(default_factory=list)
    claimed: list[int] = field(default_factory=list)
    empty: int = 0
    ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0

    def run(self) -> None:
        from django.contrib.auth.models import User
        from django.db import connection

        from cases.models import Case, Queue
        from reviews.services import claim_next

        log = QueryLog()
        rng = random.Random(self.seed)
        try:
            queue = Queue.objects.get(pk=self.queue_id)
            users = [User.objects.get(pk=self.user_id) for _ in range(self.calls)]  # fresh: grants read per call
            # One unmeasured claim on this connection first: a server keeps its connections (CONN_MAX_AGE), and a
            # new one's first statements load the backend's catalog caches, which no reviewer's claim pays.
            warm = claim_next(user=User.objects.get(pk=self.user_id), queue=queue)
            if warm is not None:
                self.warmed.append(warm.pk)
                Case.objects.filter(pk=warm.pk).update(status="approved")
            if self.barrier is not None:
                self.barrier.wait(timeout=120)
            if self.think_ms:  # paced reviewers do not all start at the same instant
                time.sleep(self.think_ms * rng.uniform(0, 1) / 1000)
            self.started = time.perf_counter()
            with connection.execute_wrapper(log):
                for user in users:
                    if self.burst and self.barrier is not None:
                        self.barrier.wait(timeout=120)
                    before = log.seconds
                    t0 = time.perf_counter()
                    case = claim_next(user=user, queue=queue)
                    self.ms.append((time.perf_counter() - t0) * 1000)
                    self.sql_ms.append((log.seconds - before) * 1000)
                    if case is None:
                        self.empty += 1
                    else:
                        self.claimed.append(case.pk)
                        # The reviewer decides it before the next claim (bookkeeping, not timed; `give_back` resets
                        # it): claim-next hands a reviewer back a case they still hold before any other.
                        Case.objects.filter(pk=case.pk).update(status="approved")
                    if self.think_ms:  # a reviewer reading the case before the next claim (not timed)
                        time.sleep(self.think_ms * rng.uniform(0.5, 1.5) / 1000)
            self.ended = time.perf_counter()
        except Exception as exc:  # reported, and the run fails: a claim must never error
            self.error = f"{type(exc).__name__}: {exc}"
            if self.barrier is not None:
                self.barrier.abort()
        finally:
            connection.close()

    def outcome(self) -> tuple[Any, ...]:
        return (self.warmed, self.claimed, self.empty, self.ms, self.sql_ms, self.error, self.started, self.ended)

    def take(self, outcome: tuple[Any, ...]) -> None:
        self.warmed, self.claimed, self.empty, self.ms, self.sql_ms, self.error, self.started, self.ended = outcome


def _in_process(worker: ClaimWorker, results: Any, index: int) -> None:
    """A forked process's body: run the worker and send its outcome back."""
    worker.run()
    results.put((index, worker.outcome()))


def run_workers(workers: list[ClaimWorker], mode: str) -> None:
    """Run the workers at once: threads of this process (each its own connection), or forked processes."""
    from django.db import connections

    connections.close_all()  # nothing shared: each thread or process opens its own connection
    if mode == "threads":
        barrier = threading.Barrier(len(workers))
        for w in workers:
            w.barrier = barrier
        threads = [threading.Thread(target=w.run, daemon=True, name=f"claim-{i}") for i, w in enumerate(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    import gc
    import multiprocessing

    # What this process holds (the fixture, Django's caches) moves to the permanent generation before the fork: the
    # children's collections then never walk it and copy its pages (copy-on-write), as a forking server's workers.
    gc.collect()
    gc.freeze()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(workers))
    results = context.Queue()
    for w in workers:
        w.barrier = barrier
    processes = [
        context.Process(target=_in_process, args=(w, results, i), daemon=True, name=f"claim-{i}")
        for i, w in enumerate(workers)
    ]
    for p in processes:
        p.start()
    try:
        for _ in processes:
            index, outcome = results.get(timeout=600)
            workers[index].take(outcome)
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        gc.unfreeze()


ROW_LOCKS = ("tuple", "transactionid")


def waiting_statement(query: str) -> str:
    """What a session waiting on a lock was running: claim-next's statements, or the benchmark's own bookkeeping
    (a reviewer's decision on the case it just claimed, `ClaimWorker.run`). A decision can wait a few ms on another
    reviewer's claim-next: PostgreSQL keeps the row lock that a concurrent FOR UPDATE took on the case before its
    recheck found it claimed already, until that transaction ends. Claims never wait on each other."""
    if query.startswith('UPDATE "cases_case" SET "status" = '):
        return "a decision (bookkeeping)"
    return "claim-next"


class LockWaitSampler:
    """Counts, while the claims run, how often any session of the scratch database waits on a lock
    (`pg_stat_activity.wait_event_type = 'Lock'`, sampled every ~2 ms from a connection of its own): claim-next
    should never wait on a row another reviewer holds (SKIP LOCKED), and claims in two queues not on each other."""

    def __init__(self) -> None:
        self.samples = 0
        self.waiting_samples = 0
        self.most_waiting = 0
        self.claim_waiting_samples = 0
        self.by_event: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lock-waits")

    def _run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self._stop.is_set():
                    cursor.execute(
                        "SELECT wait_event, left(query, 120) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                    waiting = cursor.fetchall()
                    self.samples += 1
                    if waiting:
                        self.waiting_samples += 1
                        self.most_waiting = max(self.most_waiting, len(waiting))
                        claims = 0
                        for event, query in waiting:  # tuple, transactionid, extend (a table growing)...
                            key = f"{event}: {waiting_statement(query)}"
                            self.by_event[key] = self.by_event.get(key, 0) + 1
                            # A row's lock: what claims must never wait on. (`extend` is the moment two inserts
                            # grow the history table together: a page's allocation, whatever the rows.)
                            claims += waiting_statement(query) == "claim-next" and event in ROW_LOCKS
                        self.claim_waiting_samples += bool(claims)
                    time.sleep(0.002)
        finally:
            connection.close()

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> dict[str, Any]:
        share = self.waiting_samples / self.samples if self.samples else None
        return {
            "samples": self.samples,
            "samples_with_a_lock_wait": self.waiting_samples,
            "share_with_a_lock_wait": round(share, 4) if share is not None else None,
            "most_sessions_waiting": self.most_waiting,
            "samples_with_a_claim_waiting": self.claim_waiting_samples,
            "sessions_waiting_by_lock": self.by_event,
        }
