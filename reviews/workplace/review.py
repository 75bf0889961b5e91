"""The review page of one case: everything a reviewer needs to validate the model's output, and the actions.

Opening the page changes nothing (a GET never claims): the reviewer claims with the Claim button (k), or arrives
already holding the case through claim-next. Every action is a POST that calls one `reviews.services` function;
a refusal (Conflict, PermissionDenied, ValidationError) is shown as a message on the page again, with what was
typed still in its fields, and nothing changes. After a decision the reviewer lands on the next case of the same
queue, already claimed ("save and next") for a short while (`services.opened_claim_duration`, 2 minutes).

While the reviewer holds the case, the page (workplace.js) tells the server two things: that they are at work on
it (typing, clicking, scrolling: `keep`, which renews the claim to its full 15 minutes, at most about once a
minute), and that they left without deciding (`pagehide`: `leave`, which lets the claim lapse in a few seconds).
A case the user decided themselves opens read-only once it has gone to a queue they do not work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from cases.choices import AuditStatus, CaseStatus, Route
from cases.models import Case, Queue
from cases.permissions import worked_queue_ids
from cases.selectors import is_blind
from governance.admin_mixins import acting_user
from governance.exceptions import Conflict
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
    known_labels,
    may_reassign,
    openable_case,
    reassign_candidates,
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
    Action.ESCALATE: "escalated",
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
    works_queue: bool
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
        works_queue = services.may_work(user, case.queue)
        return cls(
            waiting=waiting,
            works_queue=works_queue,
            can_act=waiting and works_queue and not case.is_held_by_other(user, now),
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
        if self.works_queue:
            keys += [("n", "Skip: next case"), ("q", "Back to the queue")]
        if self.can_act:
            keys += [("1-6", "Pick a reason code"), ("Enter", "Submit the field's form"), ("Esc", "Leave the field")]
        return keys


def openable_case_or_404(request: HttpRequest, pk: int) -> Case:
    """A case of a queue the user works, or one they decided themselves (read-only elsewhere); else a 404."""
    case = openable_case(acting_user(request), pk)
    if case is None:
        raise Http404("No case matches the given query.")
    return case


def review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the page. POST: one action, then back here, to the next case, or to the queue."""
    case = openable_case_or_404(request, pk)
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


@require_POST
def keep_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The page saw the reviewer at work on a case they hold: renew the claim (`services.keep`). 204, or 409 when
    they no longer hold it (the page then says so on its next load)."""
    case = workable_case_or_404(request, pk)
    try:
        services.keep(case=case, user=acting_user(request))
    except REFUSALS:
        return HttpResponse(status=409)
    return HttpResponse(status=204)


@require_POST
def leave_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The reviewer left the page without deciding (a beacon from `pagehide`): their claim lapses (`services.leave`).
    Always 204: a beacon reads no answer, and there is nothing to say when they held no claim."""
    services.leave(case=workable_case_or_404(request, pk), user=acting_user(request))
    return HttpResponse(status=204)


def _kept(posted: QueryDict | None) -> dict[str, str]:
    """What the reviewer had typed into the form a refusal came back from, to put back into its fields."""
    if posted is None:
        return {}
    names = ("action", "label", "text", "notes", "reason_code", "new_label")
    return {name: posted.get(name, "") for name in names}


def _page(
    request: HttpRequest,
    case: Case,
    *,
    posted: QueryDict | None = None,
    reassign_form: ReassignForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = acting_user(request)
    now = timezone.now()
    state = ReviewState.of(case, user, now)
    decisions = case_decisions(case)
    output = case.output if isinstance(case.output, dict) else {}
    shown_output = {} if state.blind else output
    worked = None if works_every_queue(user) else worked_queue_ids(user)
    if reassign_form is None and state.waiting and state.works_queue and may_reassign(user):
        reassign_form = ReassignForm(case=case, candidates=reassign_candidates(case))
    kept = _kept(posted)
    context: dict[str, Any] = {
        "title": f"Case #{case.pk} · {case.external_id}",
        "case": case,
        "status_now": CaseStatus(case.status_at(now)).label,
        # The breadcrumb and `q` lead to the case's queue only where the user works it.
        "queue": case.queue if state.works_queue else None,
        "case_queue": case.queue,
        "queue_url": work_list_url(case.queue) if case.queue and state.works_queue else "",
        "state": state,
        "shortcuts": state.shortcuts(),
        "input_rows": rows_of(display_input(case, user)),
        "output": shown_output,
        "extra_output": rows_of({k: v for k, v in shown_output.items() if k not in OUTPUT_KEYS}),
        "final_output": case.final_output if case.status != CaseStatus.AUTO_APPROVED else None,
        "agreement": shadow_agreement(case),
        "sla": Countdown.until(case.due_at, now) if state.waiting else None,
        "escalations": escalations(case, decisions),
        "my_decisions": [(PAST_TENSE.get(d.action, d.action), d) for d in decisions if d.actor_id == user.pk],
        "timeline": case_timeline(case, decisions),
        "customer_cases": [(row, _case_url(row.case, worked)) for row in customer_cases(case, user)],
        "similar": [(row, _case_url(row.case, worked)) for row in similar_decisions(case, user)],
        "known_labels": known_labels(case.category, blind=state.blind) if state.can_act else [],
        "reason_choices": reason_choices(),
        "kept": kept,
        "prefill_label": kept.get("label") or ("" if state.blind else output.get("label", "")),
        "prefill_text": kept.get("text") or ("" if state.blind else output.get("text", "")),
        "stamp": posted.get("opened", "") if posted is not None else opened_stamp(case_scope(case)),
        "reassign_form": reassign_form,
    }
    return render(request, "admin/reviews/review_case.html", context, status=status)


def _case_url(case: Case, worked: set[int] | None) -> str:
    """The workplace page of a case in a queue the user works, the read-only case page otherwise."""
    if case.queue_id and (worked is None or case.queue_id in worked):
        return review_url(case)
    return reverse("admin:cases_case_change", args=[case.pk])


def _decide(request: HttpRequest, case: Case, action: str) -> HttpResponse:
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return _page(request, case, posted=request.POST, status=400)
    blind = is_blind(case)
    # In blind review the reviewer's own output is the decision, whatever button sent it.
    wants_output = action in (Action.CORRECT, Action.FLAG) or (blind and action == Action.APPROVE)
    if wants_output and (unknown := form.unknown_label(known_labels(case.category, blind=blind))) is not None:
        messages.error(
            request,
            f"label: {unknown!r} is not a label of {case.category.slug} yet. Pick one from the list, or tick "
            "“new label” to add it. Nothing changed.",
        )
        return _page(request, case, posted=request.POST, status=400)
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
        return _page(request, _fresh(case), posted=request.POST, status=_refusal_status(exc))
    messages.success(request, _decision_message(decision))
    assert from_queue is not None  # a case the workplace opens sits in a queue
    return _open_next(request, from_queue)


def _refusal_status(exc: Exception) -> int:
    """The status of the page that comes back from a refusal, as the API would answer it: 409, 403 or 400."""
    return 409 if isinstance(exc, Conflict) else 403 if isinstance(exc, PermissionDenied) else 400


def _fresh(case: Case) -> Case:
    """The case as it is now (a refused decision may be refused because someone else changed it)."""
    return Case.objects.select_related("category", "queue", "model_version", "claimed_by").get(pk=case.pk)


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
        # A claim the reviewer did not ask for: short, unless they act on it (`services.keep`).
        nxt = services.claim_next(user=acting_user(request), queue=queue, duration=services.opened_claim_duration())
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
        nxt = services.skip(case=case, user=acting_user(request), duration=services.opened_claim_duration())
    except REFUSALS as exc:
        refuse(request, exc)
        return HttpResponseRedirect(review_url(case))
    if nxt is None:
        messages.info(request, f"No other unclaimed case waits in {queue.slug}.")
        return HttpResponseRedirect(work_list_url(queue))
    return HttpResponseRedirect(review_url(nxt))


def _reassign(request: HttpRequest, case: Case) -> HttpResponse:
    form = ReassignForm(request.POST, case=case, candidates=reassign_candidates(case))
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return _page(request, case, reassign_form=form, status=400)
    username = form.cleaned_data["assignee"]
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
        return _page(request, _fresh(case), reassign_form=form, status=_refusal_status(exc))
    holder = f", held by {username}" if username else ""
    messages.success(request, f"Case #{case.pk} reassigned to {case.queue}{holder}.")
    return HttpResponseRedirect(work_list_url(from_queue))


HANDLERS: dict[str, Callable[[HttpRequest, Case], HttpResponse]] = {
    "claim": _claim,
    "release": _release,
    "skip": _skip,
    "reassign": _reassign,
}
