"""Label exports started from the admin (DESIGN.md, Feedback loop): the same records as `GET /api/v1/labels/`,
written to a file by an RQ job that counts its progress, then downloaded by whoever asked.

`request_export` checks the person and the filters at once (a bad filter is refused before any job runs) and
enqueues the job after commit; `run_export` is the job's body, idempotent: an export already done is not
written twice, and a failed one says why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from governance.queueing import enqueue_after_commit
from reviews import export
from reviews.models import LabelExport

logger = logging.getLogger("hitl.jobs")
# How often the job writes its progress: every this many labels (one small UPDATE each time).
PROGRESS_EVERY = 5000


def export_path(item: LabelExport) -> Path:
    return Path(settings.HITL_EXPORT_DIR) / item.file_name


@transaction.atomic
def request_export(*, user: User, params: dict[str, Any]) -> LabelExport:
    """Queue an export of the labels `params` select (category, since, until, passed_gate, format)."""
    export.require_exporter(user)
    wanted = export.ExportRequest.parse(params, user)  # refuses a bad filter now, naming it
    clean = {key: value for key, value in params.items() if key in ("category", "since", "until", "passed_gate")}
    item = LabelExport.objects.create(requested_by=user, params={**clean, "format": wanted.format})
    enqueue_after_commit("reviews.jobs.export_labels", item.pk)
    return item


def run_export(export_id: int) -> dict[str, Any]:
    """Write the export's file, counting progress; returns a summary. Safe to run twice."""
    item = LabelExport.objects.select_related("requested_by").get(pk=export_id)
    if item.status == LabelExport.Status.DONE:
        return {"export": item.pk, "status": item.status, "written": item.written}
    user = item.requested_by
    try:
        wanted = export.ExportRequest.parse(item.params, user)
        export.require_exporter(user)
        labels = wanted.labels(user)
        total = labels.count()
        item.file_name = f"labels-{item.pk}.{wanted.format}"
        LabelExport.objects.filter(pk=item.pk).update(
            status=LabelExport.Status.RUNNING, total=total, written=0, file_name=item.file_name, error=""
        )
        path = export_path(item)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        written = 0
        records = export.Counted(export.label_rows(labels))
        with partial.open("w", encoding="utf-8", newline="") as out:
            for line in export.render(records.rows, wanted.format):
                out.write(line)
                if records.count - written >= PROGRESS_EVERY:
                    written = records.count
                    LabelExport.objects.filter(pk=item.pk).update(written=written)
        partial.replace(path)  # the download never sees a half-written file
        LabelExport.objects.filter(pk=item.pk).update(
            status=LabelExport.Status.DONE, written=records.count, finished_at=timezone.now()
        )
        return {"export": item.pk, "status": "done", "written": records.count}
    except Exception as exc:  # the job records why it failed, for the person waiting on it, and re-raises
        logger.exception("Label export %s failed", item.pk)
        LabelExport.objects.filter(pk=item.pk).update(
            status=LabelExport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
