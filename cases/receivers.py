"""The cases layer's answers to signals from governance (which sits below and may not import us)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from cases.choices import QueueKind
from cases.links import queue_work_link
from cases.models import Queue
from cases.permissions import workers_by_queue
from cases.services.queues import create_default_queues
from governance.models import Category
from governance.services.notifications import notify
from governance.signals import category_created, category_paused, category_resumed

KIND_ORDER = list(QueueKind.values)


@receiver(category_created, sender=Category, dispatch_uid="cases.create_default_queues")
def give_new_category_its_queues(sender: type[Category], *, category: Category, user: Any, **kwargs: Any) -> None:
    if kwargs.get("create_default_queues", True):
        create_default_queues(category=category, user=user)


@receiver(category_paused, sender=Category, dispatch_uid="cases.tell_workers_of_pause")
def tell_workers_of_pause(sender: type[Category], *, category: Category, reason: str, **kwargs: Any) -> None:
    """The people working the category's queues learn that every case now comes to them first (more work, and
    nothing acts on its own), once the pause commits."""
    _tell_workers(
        category,
        subject=f"{category.slug} paused: automation is off, every case comes to a person first",
        body=f"Why: {reason} Expect more cases in your queues until it is resumed.",
        kind="category.paused",
    )


@receiver(category_resumed, sender=Category, dispatch_uid="cases.tell_workers_of_resume")
def tell_workers_of_resume(sender: type[Category], *, category: Category, reason: str, **kwargs: Any) -> None:
    _tell_workers(
        category,
        subject=f"{category.slug} resumed: automation is back on",
        body=f"Why: {reason}",
        kind="category.resumed",
    )


def _tell_workers(category: Category, *, subject: str, body: str, kind: str) -> None:
    def send() -> None:
        # Quick and full queues first: that is where the cases that no longer act on their own arrive.
        queues = sorted(Queue.objects.filter(category=category), key=lambda q: KIND_ORDER.index(q.kind))
        for queue, people in workers_by_queue(queues).items():
            notify(
                people, subject=subject, body=body, link=queue_work_link(queue), kind=kind, category_slug=category.slug
            )

    transaction.on_commit(send)
