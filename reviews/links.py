"""The addresses of the reviewer's workplace in the admin: a queue's work list and a case's review page."""

from __future__ import annotations

from django.urls import reverse

from cases.models import Case, Queue


def work_list_url(queue: Queue) -> str:
    return reverse("admin:reviews_work_queue", args=[queue.slug])


def review_url(case: Case | int) -> str:
    return reverse("admin:reviews_work_case", args=[case if isinstance(case, int) else case.pk])
