"""Second reviews and adjudications in the workplace: the list of the tasks a person may take, and the task's page.

The list offers only what `DoubleReviewQuerySet.for_worker` allows (never a second review of one's own verdict);
any other task is a 404 here. A second review's page is blind: it shows the case's input, never the first verdict
nor the model's output, and asks for the reviewer's own label. An adjudication's page shows the model's output and
both verdicts: the adjudicator is the third person, who decides between them. Every action calls one
`reviews.services` function; a refusal is a message and nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from governance.admin_mixins import acting_user
from reviews import services
from reviews.choices import DoubleReviewStatus
from reviews.models import DoubleReview
from reviews.selectors import display_input
from reviews.services.double_review import queue_ids_of
from reviews.workplace.common import REFUSALS, Countdown, form_errors, refuse, render, rows_of
from reviews.workplace.forms import DecideForm

PAGE_SIZE = 50


def double_reviews_url() -> str:
    return reverse("admin:reviews_work_double")


def double_review_url(task: DoubleReview) -> str:
    return reverse("admin:reviews_work_double_task", args=[task.pk])


def offered_to(request: HttpRequest) -> QuerySet[DoubleReview]:
    """The open tasks the user may take, oldest first."""
    user = acting_user(request)
    return (
        DoubleReview.objects.visible_to(user)
        .for_worker(user, queue_ids_of(user))
        .select_related("category", "queue", "adjudication_queue", "claimed_by")
        .order_by("created_at", "id")
    )


def double_reviews_view(request: HttpRequest) -> HttpResponse:
    """The second reviews and adjudications waiting for the user."""
    page = Paginator(offered_to(request), PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "task": task,
            "url": double_review_url(task),
            "queue": task.queue if task.status == DoubleReviewStatus.SECOND_REVIEW else task.adjudication_queue,
            "holder": task.claimed_by.get_username() if task.holder_id_at(now) and task.claimed_by else "",
        }
        for task in page.object_list
    ]
    return render(request, "admin/reviews/double_reviews.html", {"title": "Second reviews", "rows": rows, "page": page})


def double_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the task's page. POST: claim, release, or give one's verdict."""
    task = offered_to(request).select_related("case__category", "first_label", "second_label").filter(pk=pk).first()
    if task is None:
        raise Http404("No second review of yours matches.")
    if request.method != "POST":
        return _page(request, task)
    action = request.POST.get("action", "")
    user = acting_user(request)
    try:
        if action == "claim":
            services.claim_double_review(task=task, user=user)
        elif action == "release":
            services.release_double_review(task=task, user=user)
            return HttpResponseRedirect(double_reviews_url())
        elif action == "submit":
            return _submit(request, task)
        else:
            messages.error(request, f"Unknown action {action!r}; nothing changed.")
    except REFUSALS as exc:
        refuse(request, exc)
    return HttpResponseRedirect(double_review_url(task))


def _submit(request: HttpRequest, task: DoubleReview) -> HttpResponse:
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return HttpResponseRedirect(double_review_url(task))
    output = form.output(task.case, blind=True)
    user = acting_user(request)
    try:
        if task.status == DoubleReviewStatus.SECOND_REVIEW:
            done = services.submit_second_review(task=task, user=user, output=output)
        else:
            done = services.adjudicate(task=task, user=user, output=output)
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(double_review_url(task))
    messages.success(request, _done_message(done))
    return HttpResponseRedirect(double_reviews_url())


def _done_message(task: DoubleReview) -> str:
    if task.status == DoubleReviewStatus.AGREED:
        return f"Second review #{task.pk}: you agreed with the first verdict."
    if task.status == DoubleReviewStatus.ADJUDICATION:
        where = task.adjudication_queue.slug if task.adjudication_queue else "the expert queue"
        return f"Second review #{task.pk}: you disagreed with the first verdict; it goes to adjudication in {where}."
    label = task.adjudicated_label.label if task.adjudicated_label else ""
    return f"Double review #{task.pk}: adjudicated as {label}; it supersedes both verdicts."


def _page(request: HttpRequest, task: DoubleReview) -> HttpResponse:
    user = acting_user(request)
    now = timezone.now()
    holder = task.holder_id_at(now)
    adjudication = task.status == DoubleReviewStatus.ADJUDICATION
    context: dict[str, Any] = {
        "title": f"{'Adjudication' if adjudication else 'Second review'} #{task.pk}",
        "task": task,
        "adjudication": adjudication,
        "input_rows": rows_of(display_input(task.case, user)),
        "mine": holder == user.pk,
        "holder": task.claimed_by.get_username() if holder and task.claimed_by else "",
        "claim": Countdown.until(task.claimed_until, now) if holder else None,
        "list_url": double_reviews_url(),
    }
    if adjudication:
        # The third person decides between the two: only their page shows the model's output and both verdicts.
        assert task.second_label is not None
        context["model_output"] = task.case.output if isinstance(task.case.output, dict) else {}
        context["verdicts"] = [("First verdict", task.first_label), ("Second verdict", task.second_label)]
    return render(request, "admin/reviews/double_review.html", context)
