"""The review page of one case: everything a reviewer needs to validate the model's output, and the actions.

Opening the page changes nothing (a GET never claims): the reviewer claims with the Claim button (k), or arrives
already holding the case through claim-next. Every action is a POST that calls one `reviews.services` function;
a refusal (Conflict, PermissionDenied, ValidationError) is shown as a message and nothing changes. After a
decision the reviewer lands on the next case of the same queue, already claimed ("save and next").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from cases.choices import AuditStatus, CaseStatus, Route
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from cases.selectors import is_blind
from governance.admin_mixins import acting_user
from reviews import services
from reviews.choices import Action
from reviews.links import review_url, work_list_url
from reviews.models import Decision
from reviews.selectors import (
    case_decisions,
    case_timeline,
    customer_cases,
    display_input,
    escalations,
    may_reassign,
    shadow_agreement,
    similar_decisions,
    works_every_queue,
)
from reviews.workplace.common import (
    REFUSALS,
    Countdown,
    claim_holder,
    form_errors,
    refuse,
    render,
    rows_of,
    workable_case_or_404,
)
from reviews.workplace.forms import DecideForm, ReassignForm, opened_stamp, reason_choices, seconds_since

# Keys of the model's output shown in their own places on the page; any others are listed as they are.
OUTPUT_KEYS = ("label", "text", "reasoning", "score")
PAST_TENSE: dict[str, str] = {
    Action.APPROVE: "approved",
    Action.CORRECT: "corrected",
    Action.REJECT: "rejected",
    Action.CONFIRM: "confirmed by audit",
    Action.FLAG: "flagged by audit, corrected",
}


def case_scope(case: Case) -> str:
    """What a review page's time stamp is bound to: this case."""
    return f"case:{case.pk}"


@dataclass(frozen=True)
class ReviewState:
    """What the user may do with the case right now."""

    waiting: bool
    can_act: bool
    mine: bool
    holder: str
    claim: Countdown | None
    held_until: datetime | None
    blind: bool
    audit: bool

    @classmethod
    def of(cls, case: Case, user: User, now: datetime) -> ReviewState:
        waiting = services.is_waiting(case)
        holder = claim_holder(case, now)
        return cls(
            waiting=waiting,
            can_act=waiting and not case.is_held_by_other(user, now),
            mine=holder == user.get_username(),
            holder=holder,
            claim=Countdown.until(case.claimed_until, now) if holder else None,
            held_until=case.claimed_until if holder else None,
            blind=is_blind(case),
            audit=case.audit_status == AuditStatus.PENDING,
        )

    def shortcuts(self) -> list[tuple[str, str]]:
        """The legend: only the keys that do something on this page."""
        keys: list[tuple[str, str]] = []
        if self.can_act and self.audit:
            keys += [("a", "Confirm the auto decision"), ("c", "Flag it: type the correct label")]
        elif self.can_act and self.blind:
            keys += [("c", "Type your own label (blind review)")]
        elif self.can_act:
            keys += [("a", "Approve"), ("c", "Correct: edit the label")]
        if self.can_act and not self.audit:
            keys += [("r", "Reject: pick a reason"), ("e", "Escalate: pick a reason")]
        if self.can_act and not self.mine:
            keys.append(("k", "Claim"))
        if self.mine:
            keys.append(("u", "Release"))
        keys += [("n", "Skip: next case"), ("q", "Back to the queue")]
        keys += [("1-6", "Pick a reason code"), ("Enter", "Submit the field's form"), ("Esc", "Leave the field")]
        return keys


def review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the page. POST: one action, then back here, to the next case, or to the queue."""
    case = workable_case_or_404(request, pk)
    if request.method != "POST":
        return _page(request, case)
    action = request.POST.get("action", "")
    if action in Action.values:
        return _decide(request, case, action)
    handler = HANDLERS.get(action)
    if handler is None:
        messages.error(request, f"Unknown action {action!r}; nothing changed.")
        return HttpResponseRedirect(review_url(case))
    return handler(request, case)


def _page(request: HttpRequest, case: Case) -> HttpResponse:
    user = acting_user(request)
    now = timezone.now()
    state = ReviewState.of(case, user, now)
    decisions = case_decisions(case)
    output = case.output if isinstance(case.output, dict) else {}
    shown_output = {} if state.blind else output
    others = customer_cases(case, user)
    worked = None if works_every_queue(user) else worked_queue_ids(user)
    reassign_form = ReassignForm(case=case) if state.waiting and may_reassign(user) else None
    context: dict[str, Any] = {
        "title": f"Case #{case.pk} · {case.external_id}",
        "case": case,
        "queue": case.queue,
        "queue_url": work_list_url(case.queue) if case.queue else "",
        "state": state,
        "shortcuts": state.shortcuts(),
        "input_rows": rows_of(display_input(case, user)),
        "output": shown_output,
        "extra_output": rows_of({k: v for k, v in shown_output.items() if k not in OUTPUT_KEYS}),
        "final_output": case.final_output if case.status != CaseStatus.AUTO_APPROVED else None,
        "agreement": shadow_agreement(case),
        "sla": Countdown.until(case.due_at, now) if state.waiting else None,
        "escalations": escalations(case, decisions),
        "timeline": case_timeline(case, decisions),
        "customer_cases": [(other, is_blind(other), _case_url(other, worked)) for other in others],
        "similar": similar_decisions(case, user),
        "reason_choices": reason_choices(),
        "prefill_label": "" if state.blind else output.get("label", ""),
        "prefill_text": "" if state.blind else output.get("text", ""),
        "stamp": opened_stamp(case_scope(case)),
        "reassign_form": reassign_form,
    }
    return render(request, "admin/reviews/review_case.html", context)


def _case_url(case: Case, worked: set[int] | None) -> str:
    """The workplace page of a case in a queue the user works, the read-only case page otherwise."""
    if case.queue_id and (worked is None or case.queue_id in worked):
        return review_url(case)
    return reverse("admin:cases_case_change", args=[case.pk])


def _decide(request: HttpRequest, case: Case, action: str) -> HttpResponse:
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return HttpResponseRedirect(review_url(case))
    blind = is_blind(case)
    # In blind review the reviewer's own output is the decision, whatever button sent it.
    wants_output = action in (Action.CORRECT, Action.FLAG) or (blind and action == Action.APPROVE)
    from_queue = case.queue
    try:
        decision = services.decide(
            case=case,
            user=acting_user(request),
            action=action,
            output=form.output(case, blind=blind) if wants_output else None,
            reason_code=form.cleaned_data["reason_code"],
            notes=form.cleaned_data["notes"].strip(),
            seconds_spent=seconds_since(form.cleaned_data["opened"], case_scope(case)),
        )
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(review_url(case))
    messages.success(request, _decision_message(decision))
    assert from_queue is not None  # a case the workplace opens sits in a queue
    return _open_next(request, from_queue)


def _decision_message(decision: Decision) -> str:
    case = decision.case
    reason = f" ({decision.reason_code})" if decision.reason_code else ""
    if case.status == CaseStatus.ESCALATED and decision.action in (Action.ESCALATE, Action.REJECT):
        return f"Case #{case.pk}: {decision.action}{reason}, sent to {case.queue}."
    if case.route == Route.SHADOW and decision.action in (Action.APPROVE, Action.CORRECT):
        model_label = decision.output_before.get("label")
        own = (decision.output_after or {}).get("label")
        if decision.action == Action.APPROVE:
            return f"Case #{case.pk}: you agreed with the model ({own}); recorded as approve."
        return f"Case #{case.pk}: you said {own}, the model said {model_label}; recorded as a correction."
    done = PAST_TENSE.get(decision.action, decision.action)
    corrected = decision.action in (Action.CORRECT, Action.FLAG) and decision.output_after
    new_label = f" to {decision.output_after.get('label')}" if corrected and decision.output_after else ""
    return f"Case #{case.pk}: {done}{new_label}{reason}."


def _open_next(request: HttpRequest, queue: Queue) -> HttpResponse:
    """Save and next: claim the queue's next case and open it, or go back to the queue when none waits."""
    try:
        nxt = services.claim_next(user=acting_user(request), queue=queue)
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(work_list_url(queue))
    if nxt is None:
        messages.info(request, f"No unclaimed case left in {queue.slug}.")
        return HttpResponseRedirect(work_list_url(queue))
    return HttpResponseRedirect(review_url(nxt))


def _claim(request: HttpRequest, case: Case) -> HttpResponse:
    try:
        case = services.claim(case=case, user=acting_user(request))
    except REFUSALS as exc:
        refuse(request, exc)
    else:
        assert case.claimed_until is not None
        messages.success(request, f"You hold case #{case.pk} until {timezone.localtime(case.claimed_until):%H:%M}.")
    return HttpResponseRedirect(review_url(case))


def _release(request: HttpRequest, case: Case) -> HttpResponse:
    try:
        services.release(case=case, user=acting_user(request))
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(review_url(case))
    messages.success(request, f"Case #{case.pk} is back in {case.queue}.")
    assert case.queue is not None
    return HttpResponseRedirect(work_list_url(case.queue))


def _skip(request: HttpRequest, case: Case) -> HttpResponse:
    """Next case without deciding this one (`services.skip`)."""
    queue = case.queue
    assert queue is not None
    try:
        nxt = services.skip(case=case, user=acting_user(request))
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(review_url(case))
    if nxt is None:
        messages.info(request, f"No other unclaimed case waits in {queue.slug}.")
        return HttpResponseRedirect(work_list_url(queue))
    return HttpResponseRedirect(review_url(nxt))


def _reassign(request: HttpRequest, case: Case) -> HttpResponse:
    form = ReassignForm(request.POST, case=case)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return HttpResponseRedirect(review_url(case))
    username = form.cleaned_data["assignee"].strip()
    from_queue = case.queue
    assert from_queue is not None
    try:
        case = services.reassign(
            case=case,
            user=acting_user(request),
            reason=form.cleaned_data["reason"],
            queue=form.cleaned_data["queue"],
            assignee=username,
        )
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(review_url(case))
    holder = f", held by {username}" if username else ""
    messages.success(request, f"Case #{case.pk} reassigned to {case.queue}{holder}.")
    return HttpResponseRedirect(work_list_url(from_queue))


HANDLERS: dict[str, Callable[[HttpRequest, Case], HttpResponse]] = {
    "claim": _claim,
    "release": _release,
    "skip": _skip,
    "reassign": _reassign,
}
