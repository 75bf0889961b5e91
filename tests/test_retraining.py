"""Retraining the built-in model (DESIGN.md, Feedback loop): started from the admin (its progress shown, the list
reloading itself while it runs), on the category's cadence (daily `retrain_due`, idempotent) and when the
override-rate alert fires; every run's outcome, a new version in shadow or a refusal and why, is in the audit trail
and told to the model stewards. A built-in version's page shows its held-out figures beside the active version's
and its live agreement with people from the cases it answered in shadow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from redis import Redis
from rq import Queue, SimpleWorker

from cases.models import Queue as WorkQueue
from cases.models import ShadowPrediction
from governance.choices import AuditKind
from governance.models import AuditEvent, Category, ModelVersion, Notification
from hitl_project.cron import JOBS
from metrics.jobs import alert_check, train_model
from metrics.models import TrainingRun
from metrics.selectors import live_shadow_agreement
from metrics.services.retraining import request_training, retrain_due
from reviews import services as review
from tests.factories import grant_queue, make_builtin, make_case, make_category
from tests.test_jobs_on_rq import redis_url, refuse_six_of_twenty  # noqa: F401 - the real-RQ fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def category() -> Category:
    return make_category("tickets", auto_threshold=0.9, review_threshold=0.6)


@pytest.fixture
def steward(make_user: Any) -> User:
    user: User = make_user("steward", roles=["Model Steward"], is_staff=True)
    return user


def test_a_steward_starts_a_training_in_the_admin_and_watches_it_end_in_a_shadow_version(
    client: Any, category: Category, steward: User, django_capture_on_commit_callbacks: Any
) -> None:
    builtin = make_builtin(category, status="shadow")  # labels enough; the run below trains builtin@2
    client.force_login(steward)
    form = client.get(f"/admin/metrics/trainingrun/add/?category={category.pk}")
    assert form.status_code == 200 and b"tickets" in form.content

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/metrics/trainingrun/add/", {"category": category.pk})
    assert response.status_code == 302 and response.url == "/admin/metrics/trainingrun/"
    run = TrainingRun.objects.get(trigger="manual")
    assert (run.status, run.requested_by, run.category) == ("queued", steward, category)
    assert len(callbacks) == 1  # the job, enqueued once the run is committed

    listing = client.get("/admin/metrics/trainingrun/")
    assert b'http-equiv="refresh"' in listing.content and b"Waiting for a worker" in listing.content

    with django_capture_on_commit_callbacks(execute=True):
        summary = train_model("tickets", run_id=run.pk)
    assert summary["ok"] and summary["model_version"] == "builtin@2"
    run.refresh_from_db()
    assert (run.status, run.progress, run.model_version.label) == ("done", 1.0, "builtin@2")
    assert run.started_at and run.finished_at and "builtin@2 in shadow" in run.message

    listing = client.get("/admin/metrics/trainingrun/")
    assert b'http-equiv="refresh"' not in listing.content and b"builtin@2" in listing.content
    event = AuditEvent.objects.get(kind=AuditKind.TRAINING_RUN)
    assert event.payload["outcome"] == "done" and event.payload["model_version"] == "builtin@2"
    assert event.actor_username == "steward" and event.payload["trigger"] == "manual"
    notice = Notification.objects.get(user=steward, kind="training.run")
    assert "builtin@2 in shadow" in notice.subject
    assert train_model("tickets", run_id=run.pk)["model_version"] == "builtin@2"  # a double delivery trains nothing
    assert builtin.category.model_versions.filter(name="builtin").count() == 2


def test_the_version_page_offers_training_and_shows_held_out_figures_beside_the_active_version(
    client: Any, category: Category, steward: User
) -> None:
    builtin = make_builtin(category, status="shadow")
    client.force_login(steward)
    page = client.get(f"/admin/governance/modelversion/{builtin.pk}/change/").content.decode()
    assert f"/admin/metrics/trainingrun/add/?category={category.pk}" in page
    assert "Held out, beside the active version" in page
    versus = builtin.metrics["versus_active"]
    assert f"{versus['builtin']['accuracy']:.3f}" in page and f"{versus['active_figures']['accuracy']:.3f}" in page
    assert f"on the same {versus['n']} held-out cases" in page


def test_a_refusal_is_an_outcome_in_the_audit_trail_and_the_stewards_notices(
    category: Category, steward: User, django_capture_on_commit_callbacks: Any
) -> None:
    run = request_training(category=category, user=None, trigger="manual", enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        summary = train_model("tickets", run_id=run.pk)
    assert not summary["ok"] and "Only 0 gated labels" in summary["refused"]
    run.refresh_from_db()
    assert run.status == "refused" and "Only 0 gated labels" in run.message
    event = AuditEvent.objects.get(kind=AuditKind.TRAINING_RUN)
    assert event.payload["outcome"] == "refused" and event.actor_username == "system"
    assert "refused" in Notification.objects.get(user=steward, kind="training.run").subject


def test_a_category_has_one_open_run_at_a_time(category: Category) -> None:
    first = request_training(category=category, user=None, trigger="manual", enqueue=False)
    assert request_training(category=category, user=None, trigger="cadence", enqueue=False) == first
    # A run that never ended (its job lost) no longer blocks: it is closed as failed and a new one queued.
    TrainingRun.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=7))
    second = request_training(category=category, user=None, trigger="manual", enqueue=False)
    assert second != first and TrainingRun.objects.get(pk=first.pk).status == "failed"


def test_retrain_due_queues_a_category_past_its_cadence_once(
    category: Category, django_capture_on_commit_callbacks: Any
) -> None:
    make_category("never-trained")  # no built-in model: nothing to retrain on a cadence
    builtin = make_builtin(category, status="shadow")
    assert "retrain_due" in JOBS
    assert retrain_due() == {"ok": True, "queued": []}  # just trained
    ModelVersion.objects.filter(pk=builtin.pk).update(created_at=timezone.now() - timedelta(days=31))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = retrain_due()
        second = retrain_due()
    assert len(first["queued"]) == 1 and first["queued"][0].startswith("tickets#")
    assert second == {"ok": True, "queued": []}  # the run just queued is newer than the cadence
    assert TrainingRun.objects.filter(trigger="cadence").count() == 1 and len(callbacks) == 1
    TrainingRun.objects.update(status="refused")
    assert retrain_due()["queued"] == []  # tried today, whatever came of it: not again today
    assert retrain_due(now=timezone.now() + timedelta(days=31))["queued"] != []


def test_a_cadence_of_zero_turns_it_off(category: Category) -> None:
    make_builtin(category, status="shadow")
    Category.objects.filter(pk=category.pk).update(retrain_every_days=0)
    assert retrain_due(now=timezone.now() + timedelta(days=400))["queued"] == []


@pytest.mark.django_db(transaction=True)
def test_the_override_rate_alert_queues_a_retraining_that_a_real_worker_runs(redis_url: str, make_user: Any) -> None:  # noqa: F811
    category = make_category("cat")
    refuse_six_of_twenty(category, make_user)  # 30 % overridden: the default override-rate rule fires
    connection = Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    queue.empty()
    fired = alert_check()
    assert [line["kind"] for line in fired] == ["override_rate"]
    run = TrainingRun.objects.get(category=category)
    assert run.trigger == "override_alert" and run.status == "queued"
    assert [job.func_name for job in queue.jobs] == ["metrics.jobs.train_model"]
    assert queue.jobs[0].kwargs == {"run_id": run.pk}
    SimpleWorker([queue], connection=connection).work(burst=True)
    run.refresh_from_db()
    assert run.status == "refused"  # 20 labels by an uncertified reviewer: the outcome says why
    assert AuditEvent.objects.filter(kind=AuditKind.TRAINING_RUN, payload__outcome="refused").exists()


def test_shadow_agreement_is_measured_on_live_cases_beside_the_cases_own_answers(
    client: Any, category: Category, steward: User, make_user: Any
) -> None:
    shadow = make_builtin(category, status="shadow")
    reviewer = make_user("rev2", roles=["Reviewer"])
    for work_queue in WorkQueue.objects.filter(category=category):
        grant_queue(reviewer, work_queue)
    reviewer = User.objects.get(pk=reviewer.pk)
    # The cases' model says "login" every time; people say shipping; the shadow built-in model says shipping.
    for i in range(4):
        case = make_case(
            category, input={"body": f"courier lost the parcel {i}"}, output={"label": "login"}, confidence=0.8
        )
        review.decide(case=case, user=reviewer, action="correct", output={"label": "shipping"})
    undecided = make_case(category, input={"body": "parcel delivery"}, output={"label": "login"}, confidence=0.8)
    assert ShadowPrediction.objects.filter(model_version=shadow).count() == 5
    assert ShadowPrediction.objects.get(case=undecided).label == "shipping"

    figures = live_shadow_agreement(shadow)
    assert figures["n"] == 4
    assert (figures["shadow"]["rate"], figures["case"]["rate"]) == (1.0, 0.0)
    assert figures["answered_by"] == [("model", "1")]

    client.force_login(steward)
    page = client.get(f"/admin/governance/modelversion/{shadow.pk}/change/").content.decode()
    assert "Live agreement with people" in page and "n=4" in page and "model@1" in page


def test_a_steward_sets_the_cadence_through_the_api_with_a_reason(api: Any, category: Category, steward: User) -> None:
    url = "/api/v1/categories/tickets/retraining/"
    response = api(steward).patch(url, {"retrain_every_days": 7, "reason": "Labels pile up fast"}, format="json")
    assert response.status_code == 200 and response.json()["retrain_every_days"] == 7
    category.refresh_from_db()
    assert category.retrain_every_days == 7
    assert "Labels pile up fast" in category.history.first().history_change_reason


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"retrain_every_days": -1, "reason": "x"}, "retrain_every_days"),
        ({"retrain_every_days": 400, "reason": "x"}, "retrain_every_days"),
        ({"retrain_every_days": "often", "reason": "x"}, "retrain_every_days"),
        ({"retrain_every_days": 7}, "reason"),
        ({"retrain_every_days": 30, "reason": "no change"}, "retrain_every_days"),
    ],
)
def test_a_bad_cadence_is_refused_naming_the_field(
    api: Any, category: Category, steward: User, body: dict[str, Any], field: str
) -> None:
    response = api(steward).patch("/api/v1/categories/tickets/retraining/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert Category.objects.get(pk=category.pk).retrain_every_days == 30


def test_the_cadence_needs_a_stewards_grant(api: Any, category: Category, make_user: Any) -> None:
    reviewer = make_user("rev", roles=["Reviewer"])
    grant_queue(reviewer, WorkQueue.objects.get(category=category, kind="quick"))  # sees the category, no more
    body = {"retrain_every_days": 7, "reason": "x"}
    assert api(reviewer).patch("/api/v1/categories/tickets/retraining/", body, format="json").status_code == 403


def test_the_cadence_is_set_on_the_category_page(client: Any, category: Category, steward: User) -> None:
    client.force_login(steward)
    url = f"/admin/governance/category/{category.pk}/retraining/"
    assert url in client.get(f"/admin/governance/category/{category.pk}/change/").content.decode()
    response = client.post(url, {"post": "yes", "retrain_every_days": 14, "reason": "Fortnightly"})
    assert response.status_code == 302
    assert Category.objects.get(pk=category.pk).retrain_every_days == 14
