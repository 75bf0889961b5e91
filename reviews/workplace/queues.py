"""My queues, a queue's work list, claim-next and batch approval: the reviewer's way into the work.

A queue outside the user's grants is a 404 on every path here. A work list page costs a fixed number of queries:
the user's grants, the queue, one count and one page of rows (`selectors.work_list`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from cases.choices import Priority, QueueKind, Route
from cases.models import Case, Queue
from cases.selectors import QueueStats, is_blind, queue_stats
from governance.admin_mixins import acting_user
from reviews import services
from reviews.links import review_url, work_list_url
from reviews.models import Decision, DoubleReview
from reviews.selectors import WorkListFilters, input_opening, why_here, work_list, workable_cases, workable_queues
from reviews.services.double_review import queue_ids_of
from reviews.workplace.common import (
    REFUSALS,
    Countdown,
    claim_holder,
    duration_text,
    refuse,
    render,
    sla_text,
    workable_queue_or_404,
)
from reviews.workplace.forms import opened_stamp, seconds_since

PAGE_SIZE = 50
# How much of the customer's message a row shows: a glance on the work list, more on the batch's confirmation.
LIST_OPENING = 140
CONFIRM_OPENING = 320
# The order a reviewer thinks of queues in: the everyday ones first, then the ones work goes up to.
KIND_ORDER = {kind: index for index, kind in enumerate(QueueKind.values)}
# The work list's batch keys (reviews/static/reviews/batch.js moves and selects; data-key="A" submits).
BATCH_KEYS = [
    ("j / k", "Next / previous case"),
    ("x", "Select or unselect the case under focus"),
    ("shift+a", "Approve the selection: a confirmation follows"),
]


def batch_scope(queue: Queue) -> str:
    """What a batch's time stamp is bound to: the queue's list, where the reviewer looked at the cases."""
    return f"queue:{queue.pk}"


@dataclass(frozen=True)
class QueueRow:
    queue: Queue
    stats: QueueStats
    oldest_age: str

    @property
    def sla(self) -> str:
        return sla_text(self.queue.sla)

    @property
    def url(self) -> str:
        return work_list_url(self.queue)


def _my_queues(user: User) -> list[Queue]:
    """The queues the user works, in the order My queues lists them: by category, then everyday kinds first."""
    return sorted(
        workable_queues(user).select_related("category"), key=lambda q: (q.category.slug, KIND_ORDER.get(q.kind, 99))
    )


def my_queues_view(request: HttpRequest) -> HttpResponse:
    """The queues the user works, with depth, oldest age and how many cases are near their SLA or past it."""
    now = timezone.now()
    queues = _my_queues(acting_user(request))
    categories = sorted({queue.category.slug for queue in queues})
    category = request.GET.get("category", "")
    if category:
        queues = [queue for queue in queues if queue.category.slug == category]
    stats = queue_stats(queues, now)
    user = acting_user(request)
    second_reviews = DoubleReview.objects.visible_to(user).for_worker(user, queue_ids_of(user)).count()
    rows = [
        QueueRow(
            queue=queue,
            stats=stats[queue.pk],
            oldest_age=duration_text(now - oldest) if (oldest := stats[queue.pk].oldest_created_at) else "",
        )
        for queue in queues
    ]
    return render(
        request,
        "admin/reviews/my_queues.html",
        {
            "title": "My queues",
            "rows": rows,
            "categories": categories,
            "category": category,
            "shortcuts": [
                ("1-9", "Open the queue with that number"),
                ("n", "Claim the next case of the first queue with work"),
            ],
            "second_reviews": second_reviews,
        },
    )


@dataclass(frozen=True)
class WorkRow:
    """One case of a work list, as the reviewer sees it (the model's label hidden in blind review)."""

    case: Case
    blind: bool
    label: Any
    text: str
    opening: str
    sla: Countdown | None
    holder: str
    held_until: datetime | None
    # In an escalation or expert queue: the decision that sent the case here (reason code, note, who, when).
    why: Decision | None = None

    @classmethod
    def of(cls, case: Case, now: datetime, *, user: User, queue: Queue, opening: int = LIST_OPENING) -> WorkRow:
        blind = is_blind(case)
        output = case.output if isinstance(case.output, dict) and not blind else {}
        holder = claim_holder(case, now)
        text = str(output.get("text") or "")
        return cls(
            case=case,
            blind=blind,
            label=output.get("label"),
            text=text if len(text) <= opening else text[: opening - 1] + "…",
            # A queue's cases are of its category: its PII rules apply to every row.
            opening=input_opening(case.input, pii_fields=queue.category.pii_fields, user=user, length=opening),
            sla=Countdown.until(case.due_at, now),
            holder=holder,
            held_until=case.claimed_until if holder else None,
        )

    @property
    def url(self) -> str:
        return review_url(self.case)

    @property
    def value(self) -> Decimal | None:
        return self.case.value


def work_list_view(request: HttpRequest, slug: str) -> HttpResponse:
    """A queue's waiting cases, urgent first then by due time, filtered and paginated."""
    queue = workable_queue_or_404(request, slug)
    filters = WorkListFilters.from_query(request.GET)
    page = Paginator(work_list(queue, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    user = acting_user(request)
    rows = [WorkRow.of(case, now, user=user, queue=queue) for case in page.object_list]
    escalation_list = queue.kind in (QueueKind.ESCALATION, QueueKind.EXPERT)
    if escalation_list:
        why = why_here([row.case for row in rows])
        rows = [replace(row, why=why.get(row.case.pk)) for row in rows]
    filter_query = urlencode(filters.as_params())
    return render(
        request,
        "admin/reviews/work_list.html",
        {
            "title": f"{queue.name or queue.slug}",
            "queue": queue,
            "rows": rows,
            "escalation_list": escalation_list,
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "filters": filters,
            "filter_query": filter_query,
            "route_choices": Route.choices,
            "priority_choices": Priority.choices,
            "sla": sla_text(queue.sla),
            "stamp": opened_stamp(batch_scope(queue)),
            "batch_max": services.batch_cap(queue) if queue.allow_batch else None,
            "shortcuts": [("n", "Claim the next case and open it"), *(BATCH_KEYS if queue.allow_batch else [])],
        },
    )


@require_POST
def my_next_view(request: HttpRequest) -> HttpResponse:
    """`n` on My queues: the next case of the first queue with work, in the page's order (the category filter
    kept), claimed and opened; a case the reviewer already holds comes first in its queue (`services.claim_next`)."""
    user = acting_user(request)
    category = request.POST.get("category", "")
    for queue in _my_queues(user):
        if category and queue.category.slug != category:
            continue
        try:
            case = services.claim_next(user=user, queue=queue)
        except REFUSALS as exc:
            refuse(request, exc)
            break
        if case is not None:
            return HttpResponseRedirect(review_url(case))
    else:
        messages.info(request, "No unclaimed case waits in your queues.")
    return HttpResponseRedirect(
        reverse("admin:reviews_work") + (f"?{urlencode({'category': category})}" if category else "")
    )


@require_POST
def claim_next_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Claim the queue's most urgent unclaimed case and open it."""
    queue = workable_queue_or_404(request, slug)
    try:
        case = services.claim_next(user=acting_user(request), queue=queue)
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(work_list_url(queue))
    if case is None:
        messages.info(request, f"No unclaimed case waits in {queue.slug}.")
        return HttpResponseRedirect(work_list_url(queue))
    return HttpResponseRedirect(review_url(case))


def _selected_ids(request: HttpRequest) -> list[int]:
    """The selected case ids, in order, once each; anything that is not an id is ignored."""
    ids = [int(value) for value in request.POST.getlist("case") if value.isdigit()]
    return list(dict.fromkeys(ids))


@require_POST
def batch_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Approve the selected cases together: a confirmation page with their summaries, then the batch service."""
    queue = workable_queue_or_404(request, slug)
    user = acting_user(request)
    ids = _selected_ids(request)
    try:
        # Before the confirmation too: a batch past the cap is refused before anyone reads its summaries.
        services.check_may_batch(user=user, queue=queue, size=len(ids) if ids else None)
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(work_list_url(queue))
    if not ids:
        messages.warning(request, "Select the cases to approve first.")
        return HttpResponseRedirect(work_list_url(queue))
    visible = workable_cases(user).filter(pk__in=ids)
    if request.POST.get("post") != "yes":
        return _batch_confirmation(request, queue, visible, ids)
    try:
        result = services.batch_approve(
            user=user,
            queue=queue,
            case_ids=ids,
            seconds_spent=seconds_since(request.POST.get("opened", ""), batch_scope(queue)),
        )
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(work_list_url(queue))
    verb = "Confirmed" if queue.kind == QueueKind.AUDIT else "Approved"
    if result.approved:
        listed = ", ".join(f"#{pk}" for pk in result.approved)
        median = result.median_seconds_per_case
        pace = f" ({median:g} s a case)" if median is not None else ""
        messages.success(request, f"{verb} {len(result.approved)} case(s) in batch {result.batch_id}{pace}: {listed}.")
    for pk, reason in result.skipped:
        messages.warning(request, f"Skipped #{pk}: {reason}")
    return HttpResponseRedirect(work_list_url(queue))


def _batch_confirmation(request: HttpRequest, queue: Queue, visible: QuerySet[Case], ids: list[int]) -> HttpResponse:
    now = timezone.now()
    # What the batch would approve: the selection's cases still waiting in this queue, in work-list order.
    cases = work_list(queue, WorkListFilters()).filter(pk__in=visible.values("pk"))
    user = acting_user(request)
    rows = [WorkRow.of(case, now, user=user, queue=queue, opening=CONFIRM_OPENING) for case in cases]
    scope = batch_scope(queue)
    stamp = request.POST.get("opened", "")
    verb = "Confirm" if queue.kind == QueueKind.AUDIT else "Approve"
    return render(
        request,
        "admin/reviews/batch_confirm.html",
        {
            "title": f"Approve {len(rows)} case(s) of {queue.slug}?",
            "queue": queue,
            "rows": rows,
            "missing": len(ids) - len(rows),
            "ids": ids,
            # The batch's time runs from the list's opening; without a valid stamp of it, from this page's.
            "stamp": stamp if seconds_since(stamp, scope) is not None else opened_stamp(scope),
            "verb": verb,
            "shortcuts": [
                ("shift+a", f"{verb} these cases"),
                ("Enter", f"{verb} (the button has the focus)"),
                ("q", "Back to the queue, nothing approved"),
            ],
        },
    )
