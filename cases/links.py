"""Where the people of a queue go to work it, for the links that notifications carry.

The page belongs to a layer above cases (the reviewer's workplace in reviews), which registers it from its
`ready()`; cases never names it. Without a registration, the link is the queue's own admin page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse

from cases.models import Queue

_queue_work_page: Callable[[Queue], str] | None = None


def register_queue_work_page(page: Callable[[Queue], str]) -> None:
    global _queue_work_page
    _queue_work_page = page


def queue_work_link(queue: Queue) -> str:
    """The page where the queue's cases are worked."""
    if _queue_work_page is not None:
        return _queue_work_page(queue)
    return reverse("admin:cases_queue_change", args=[queue.pk])
