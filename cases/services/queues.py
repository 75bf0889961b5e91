"""The queues of a category: the five every new category gets."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from cases.choices import QueueKind
from cases.models import Queue
from governance.history import save_with_reason
from governance.models import Category

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The five queues every new category gets (DESIGN.md, REST API v1): kind -> (allow batch, overflow kind).
DEFAULT_QUEUES: dict[str, tuple[bool, str | None]] = {
    QueueKind.QUICK: (True, QueueKind.ESCALATION),
    QueueKind.FULL: (False, QueueKind.ESCALATION),
    QueueKind.ESCALATION: (False, None),
    QueueKind.EXPERT: (False, None),
    QueueKind.AUDIT: (False, None),
}


@transaction.atomic
def create_default_queues(*, category: Category, user: User | None) -> list[Queue]:
    """The category's quick, full, escalation, expert and audit queues; quick and full overflow to escalation."""
    slas: dict[str, timedelta] = settings.HITL_DEFAULT_QUEUE_SLAS
    queues: dict[str, Queue] = {}
    for kind, (allow_batch, _) in DEFAULT_QUEUES.items():
        queue = Queue(
            slug=f"{category.slug}-{kind}",
            name=f"{category.name}: {QueueKind(kind).label}",
            category=category,
            kind=kind,
            sla=slas[kind],
            allow_batch=allow_batch,
        )
        save_with_reason(queue, user=user, reason="Default queue of a new category")
        queues[kind] = queue
    for kind, (_, overflow) in DEFAULT_QUEUES.items():
        if overflow:
            queues[kind].next_queue = queues[overflow]
            save_with_reason(
                queues[kind], user=user, reason="Overflow of a default queue", update_fields=["next_queue"]
            )
    return list(queues.values())
