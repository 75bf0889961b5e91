"""When and how the built-in model is (re)trained (DESIGN.md, Feedback loop): on demand from the admin or `runjob`,
on the category's cadence (`retrain_due`, daily), and when the override-rate alert fires.

Every start goes through `request_training`, which keeps one open run per category (a second request while one is
queued or running gets that one back), so a cadence tick, an alert and a click on the same day train once. The run
itself (`run_training`, the RQ job) records its progress on its TrainingRun row, and its outcome, a new version in
shadow or a refusal and why, in the audit trail and in a notice to the model stewards.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone

from governance import events
from governance.choices import AuditKind
from governance.history import system_user
from governance.models import Category, ModelVersion
from governance.permissions import MODEL_STEWARD
from governance.promotion_gate import BUILTIN_MODEL_NAME
from governance.queueing import enqueue_after_commit
from governance.services.notifications import notify, users_in_role
from metrics.models import TrainingRun

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("hitl.training")

JOB = "metrics.jobs.train_model"
# A run queued or running for longer than this never ended (Redis lost the job, a worker died): it no longer
# blocks a new one, and is closed as failed when the next request comes.
STALE_AFTER = timedelta(hours=6)


@transaction.atomic
def request_training(*, category: Category, user: User | None, trigger: str, enqueue: bool = True) -> TrainingRun:
    """Queue a training of the category's built-in model (the RQ job after commit), or return the run already
    open for it. `enqueue=False` leaves running it to the caller (runjob runs it in its own process)."""
    now = timezone.now()  # the clock runs' created_at is stamped with, so "stale" compares like with like
    # The category's row serializes two requests for it (an alert and a click at once): one run, not two.
    Category.objects.select_for_update(no_key=True).get(pk=category.pk)
    open_runs = TrainingRun.objects.filter(
        category=category, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
    )
    current = open_runs.filter(created_at__gte=now - STALE_AFTER).order_by("-created_at").first()
    if current is not None:
        return current
    open_runs.update(
        status=TrainingRun.Status.FAILED, finished_at=now, message="It never finished (the job was lost); retried."
    )
    run = TrainingRun.objects.create(
        category=category, requested_by=user, trigger=trigger, message="Waiting for a worker"
    )
    if enqueue:
        enqueue_after_commit(JOB, category.slug, run_id=run.pk)
    return run


def _report(run_id: int, share: float, message: str) -> None:
    # Outside any transaction of the training, so the admin sees each step as it happens.
    TrainingRun.objects.filter(pk=run_id).update(progress=min(max(share, 0.0), 1.0), message=message[:2000])


def run_training(*, run_id: int) -> TrainingRun:
    """Run a queued training and record how it ended. Idempotent: a run that is not queued (a double delivery, or
    one already done) is left as it is."""
    # Imported here: scikit-learn takes seconds to import, and the work horses import this module for the alert
    # and cadence jobs, which only queue a run.
    from metrics.services import training

    started = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), progress=0.0, message="Starting"
    )
    run = TrainingRun.objects.select_related("category__policy", "requested_by").get(pk=run_id)
    if not started:
        return run
    try:
        result = training.train_model(
            category=run.category,
            user=run.requested_by or system_user(),
            progress=lambda share, message: _report(run_id, share, message),
        )
    except training.TrainingRefused as refusal:
        return _finish(run, status=TrainingRun.Status.REFUSED, message=str(refusal))
    except Exception as exc:
        _finish(run, status=TrainingRun.Status.FAILED, message=f"{type(exc).__name__}: {exc}")
        raise
    metrics = result.metrics
    message = (
        f"Registered {result.model_version.label} in shadow: held-out accuracy {metrics['accuracy']:.3f} on "
        f"{metrics['n']} cases, trained on {metrics['n_train']} labels in {result.seconds:.1f} s."
    )
    return _finish(run, status=TrainingRun.Status.DONE, message=message, model_version=result.model_version)


@transaction.atomic
def _finish(run: TrainingRun, *, status: str, message: str, model_version: ModelVersion | None = None) -> TrainingRun:
    """Close the run, record its outcome in the audit trail, and tell the model stewards once it commits."""
    run.status = status
    run.message = message
    run.model_version = model_version
    run.finished_at = timezone.now()
    if status == TrainingRun.Status.DONE:
        run.progress = 1.0
    run.save(update_fields=["status", "message", "model_version", "progress", "finished_at"])
    category = run.category
    events.record(
        AuditKind.TRAINING_RUN,
        actor=run.requested_by or system_user(),
        category_slug=category.slug,
        payload={
            "run": run.pk,
            "trigger": run.trigger,
            "outcome": status,
            "model_version": model_version.label if model_version is not None else None,
            "message": message,
        },
    )
    verb = {"done": "trained", "refused": "refused", "failed": "failed"}.get(status, status)
    subject = f"{category.slug}: built-in model training {verb}"
    if model_version is not None:
        subject += f" ({model_version.label} in shadow)"
    link = reverse("admin:metrics_trainingrun_change", args=[run.pk])
    trigger = TrainingRun.Trigger(run.trigger).label
    transaction.on_commit(
        lambda: notify(
            users_in_role(MODEL_STEWARD),
            subject=subject,
            body=f"{message} Started by: {trigger}.",
            link=link,
            kind="training.run",
            category_slug=category.slug,
        )
    )
    return run


def last_trained_at(category: Category) -> datetime | None:
    """When the category's built-in model was last trained or tried: its newest run, else (a model trained before
    runs were recorded) its newest built-in version."""
    last_run: datetime | None = TrainingRun.objects.filter(category=category).aggregate(at=Max("created_at"))["at"]
    if last_run is not None:
        return last_run
    builtin = Q(category=category, name=BUILTIN_MODEL_NAME)
    at: datetime | None = ModelVersion.objects.filter(builtin).aggregate(at=Max("created_at"))["at"]
    return at


def retrain_due(*, now: datetime | None = None) -> dict[str, Any]:
    """Queue a retraining for each category whose built-in model is older than its cadence (`retrain_every_days`,
    0: off). Only categories that have a built-in model are retrained on a cadence: one never trained has
    nothing to refresh, and a monthly refusal for every category would drown the stewards' notices. Running it
    twice in a day queues nothing the second time (the first run is newer than the cadence)."""
    now = now or timezone.now()
    queued: list[str] = []
    candidates = Category.objects.filter(retrain_every_days__gt=0, model_versions__name=BUILTIN_MODEL_NAME).distinct()
    for category in candidates.order_by("slug"):
        last = last_trained_at(category)
        if last is not None and last > now - timedelta(days=category.retrain_every_days):
            continue
        run = request_training(category=category, user=system_user(), trigger=TrainingRun.Trigger.CADENCE)
        queued.append(f"{category.slug}#{run.pk}")
    if queued:
        logger.info("Retraining due: %s", ", ".join(queued))
    return {"ok": True, "queued": queued}
