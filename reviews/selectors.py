"""Reads for the reviewer's workplace: the queues a person works, a queue's work list, and a case's context; and
for the data curator's, the people one may certify.

Every function here starts from what the user may see (`Case.objects.visible_to`, the queues they work), so a
page built from them cannot show past the user's grants. Each read is one query whatever the data size: a page
made of them costs a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet

from cases.choices import FINAL_STATUSES, OPEN_STATUSES, Priority, QueueKind, Route
from cases.models import Case, Queue
from cases.permissions import shown_input, users_who_work, worked_queue_ids
from cases.selectors import is_blind
from governance.choices import AuditKind
from governance.models import AuditEvent, Category, Policy
from governance.permissions import ESCALATION_MANAGER, REVIEWER
from reviews.choices import Action
from reviews.models import Decision, Label
from reviews.services import REASSIGN_PERM

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django.http import QueryDict

# A queue's work list: urgent first, then by due time (DESIGN.md, Queue); the id keeps pages stable.
WORK_LIST_ORDER = ("-priority", "due_at", "id")
# How many of the customer's other cases and of the similar past decisions the review page shows.
CONTEXT_ROWS = 10
# The input fields that hold what the customer wrote, in the order a reader wants them: a subject or title first,
# then the message itself. Integrations name them differently; these are the usual names (the demo's support
# tickets send subject and body, its leads a message, its refund requests a reason).
MESSAGE_FIELDS = (
    "subject",
    "title",
    "summary",
    "message",
    "body",
    "text",
    "description",
    "reason",
    "comment",
    "notes",
)


def works_every_queue(user: User | AnonymousUser) -> bool:
    """Superusers work every queue; everyone else the queues granted to them (as `services.may_work` says)."""
    return bool(user.is_authenticated and user.is_superuser)


def works_any_queue(user: User | AnonymousUser) -> bool:
    """Does the user work at least one queue? Costs no query beyond the grants read once per request."""
    return bool(user.is_authenticated and (works_every_queue(user) or worked_queue_ids(user)))


def workable_queues(user: User | AnonymousUser) -> QuerySet[Queue]:
    """The queues the user may work: `cases.work_queue` per user or group, every queue for superusers."""
    if not user.is_authenticated:
        return Queue.objects.none()
    if works_every_queue(user):
        return Queue.objects.all()
    return Queue.objects.filter(pk__in=worked_queue_ids(user))


def workable_cases(user: User | AnonymousUser) -> QuerySet[Case]:
    """Cases the user may see that sit in a queue they work: what the workplace opens (anything else is a 404)."""
    if not user.is_authenticated:
        return Case.objects.none()
    if works_every_queue(user):
        return Case.objects.visible_to(user).filter(queue__isnull=False)
    return Case.objects.visible_to(user).filter(queue_id__in=worked_queue_ids(user))


def openable_case(user: User | AnonymousUser, pk: int) -> Case | None:
    """The case the workplace's review page opens: one of a queue the user works, or one they decided themselves,
    wherever it went since (an escalated case opens read-only: `ReviewState.can_act` is false outside the queues
    they work). Their own decisions are their work; the case's context stays within their grants. Two lookups by
    key rather than one OR of two subqueries, which a planner may answer by reading every visible case."""
    if not user.is_authenticated:
        return None
    related = ("category", "queue", "model_version", "claimed_by")
    case = workable_cases(user).select_related(*related).filter(pk=pk).first()
    if case is None and Decision.objects.filter(case_id=pk, actor_id=user.pk).exists():
        case = Case.objects.select_related(*related).filter(pk=pk).first()
    return case


def may_reassign(user: User | AnonymousUser) -> bool:
    """Whether to offer the reassign form; `services.reassign` checks it again (and the queue) when it runs."""
    return bool(user.is_authenticated and user.has_perm(REASSIGN_PERM))


def display_input(case: Case, user: User | AnonymousUser) -> Any:
    """The case's input as this user may see it: as submitted with `cases.view_pii`, otherwise redacted."""
    return shown_input(case.input, pii_fields=case.category.pii_fields, user=user)


def input_opening(value: Any, *, pii_fields: Iterable[str] | None, user: User | AnonymousUser, length: int) -> str:
    """The opening of what the customer wrote, as this user may see it (redacted without `cases.view_pii`), at
    most `length` characters: the input's message fields (`MESSAGE_FIELDS`), or failing those its other text
    fields, in order, on one line. What a batch shows beside the model's answer, so that nobody approves a reply
    without the message it answers."""
    if not isinstance(value, dict):
        return ""
    texts = {
        key: item for key, item in value.items() if isinstance(key, str) and isinstance(item, str) and item.strip()
    }
    rank = {name: index for index, name in enumerate(MESSAGE_FIELDS)}
    message = sorted((key for key in texts if key.casefold() in rank), key=lambda key: rank[key.casefold()])
    # Failing message fields, the other text fields by name: PostgreSQL's jsonb does not keep the submitted order.
    picked = {key: texts[key] for key in message or sorted(texts)}
    # Only whole top-level strings are picked, so redacting them alone gives what the full redacted view shows.
    shown = shown_input(picked, pii_fields=pii_fields, user=user)
    text = " · ".join(" ".join(item.split()) for item in shown.values())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


@dataclass(frozen=True)
class WorkListFilters:
    """A work list's filters, from simple GET parameters.

    `segment` is `key=value` (e.g. `channel=email`). The label filter never matches a blind (shadow) case:
    filtering on the model's label would tell the reviewer what the model said.
    """

    route: str = ""
    label: str = ""
    segment: str = ""
    priority: str = ""

    @classmethod
    def from_query(cls, params: QueryDict) -> WorkListFilters:
        route = params.get("route", "")
        priority = params.get("priority", "")
        return cls(
            route=route if route in Route.values else "",
            label=params.get("label", "").strip()[:200],
            segment=params.get("segment", "").strip()[:200],
            priority=priority if priority in Priority.values else "",
        )

    def segment_pair(self) -> tuple[str, str] | None:
        key, sep, value = self.segment.partition("=")
        return (key.strip(), value.strip()) if sep and key.strip() else None

    def apply(self, cases: QuerySet[Case]) -> QuerySet[Case]:
        if self.route:
            cases = cases.filter(route=self.route)
        if self.priority:
            cases = cases.filter(priority=self.priority)
        if self.label:
            cases = cases.filter(output__label=self.label).exclude(route=Route.SHADOW)
        pair = self.segment_pair()
        if pair is not None:
            cases = cases.filter(**{f"segment__{pair[0]}": pair[1]})
        return cases

    def as_params(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


def work_list(queue: Queue, filters: WorkListFilters) -> QuerySet[Case]:
    """The queue's waiting cases, filtered, urgent first then by due time; one query per page of rows."""
    return (
        filters.apply(Case.objects.waiting_in(queue))
        .select_related("claimed_by")
        .defer("audit_draw")  # the input stays: each row shows its opening (`input_opening`)
        .order_by(*WORK_LIST_ORDER)
    )


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a case's timeline: an audit event, with the decision it records when there is one."""

    at: datetime
    kind: str
    actor: str
    summary: str
    decision: Decision | None = None


def _event_summary(event: AuditEvent) -> str:
    payload = event.payload
    if event.kind == AuditKind.CASE_ROUTED:
        return f"Routed {payload.get('route')} to {payload.get('queue') or 'no queue'}"
    if event.kind == AuditKind.CASE_REASSIGNED:
        moved = f"{payload.get('from_queue')} → {payload.get('to_queue')}"
        return f"Reassigned {moved}, to {payload.get('assignee') or 'nobody'}: {payload.get('reason')}"
    if event.kind in (AuditKind.CASE_DECIDED, AuditKind.CASE_ESCALATED, AuditKind.CASE_AUDITED):
        moved = f" → {payload['to_queue']}" if payload.get("to_queue") else ""
        reason = f" ({payload['reason_code']})" if payload.get("reason_code") else ""
        return f"{payload.get('action')}{reason} in {payload.get('from_queue')}{moved}"
    return event.get_kind_display()


def case_timeline(case: Case, decisions: list[Decision]) -> list[TimelineEntry]:
    """The case's audit events, oldest first, each joined to its decision (notes, outputs, seconds spent)."""
    by_id = {decision.pk: decision for decision in decisions}
    entries: list[TimelineEntry] = []
    for event in AuditEvent.objects.filter(case_id=case.pk).order_by("seq"):
        decision_id = event.payload.get("decision_id") if isinstance(event.payload, dict) else None
        decision = by_id.pop(decision_id, None) if isinstance(decision_id, int) else None
        summary = _event_summary(event)
        entries.append(TimelineEntry(event.created_at, event.kind, event.actor_username, summary, decision))
    # A decision no event names (none should exist) still shows: the Decision table is the record of who decided.
    for decision in by_id.values():
        actor = decision.actor.get_username() if decision.actor else "system"
        entries.append(TimelineEntry(decision.created_at, "decision", actor, decision.action, decision))
    return sorted(entries, key=lambda entry: entry.at)


def case_decisions(case: Case) -> list[Decision]:
    return list(Decision.objects.filter(case=case).select_related("actor").order_by("created_at", "id"))


def escalations(case: Case, decisions: list[Decision]) -> list[Decision]:
    """The decisions that sent the case up: escalations, and rejects that moved it (all but a final reject)."""
    closing = decisions[-1] if decisions and case.status in FINAL_STATUSES else None
    return [d for d in decisions if d.action in (Action.ESCALATE, Action.REJECT) and d is not closing]


# How much of a case's input a context row shows: enough to recognise the case, one line.
OPENING_CHARS = 160
# Known labels are read from this many of the category's newest cases and labels (bounded, whatever the data).
KNOWN_LABELS_SCAN = 2000


@dataclass(frozen=True)
class ContextRow:
    """One past case beside the one under review: what it was, what the model said, what a person decided, why."""

    case: Case
    opening: str
    model_label: Any  # None in blind review: the model's answer stays hidden until a person gave theirs
    verdict: str
    reason_code: str
    notes: str
    actor: str
    at: datetime | None


def _verdict_text(decision: Decision | None, case: Case) -> str:
    if decision is None:
        return "waiting" if case.status in OPEN_STATUSES else case.get_status_display().lower()
    after = (decision.output_after or {}).get("label") if isinstance(decision.output_after, dict) else None
    before = decision.output_before.get("label") if isinstance(decision.output_before, dict) else None
    if decision.action in (Action.CORRECT, Action.FLAG) and after and after != before:
        return f"{decision.action} → {after}"
    return str(decision.action)


def _context_row(case: Case, decision: Decision | None, user: User | AnonymousUser) -> ContextRow:
    blind = is_blind(case)
    output = case.output if isinstance(case.output, dict) else {}
    return ContextRow(
        case=case,
        opening=input_opening(case.input, pii_fields=case.category.pii_fields, user=user, length=OPENING_CHARS),
        model_label=None if blind else output.get("label"),
        verdict=_verdict_text(decision, case) if not blind or decision is None else "decided (blind)",
        reason_code=decision.reason_code if decision else "",
        notes=decision.notes if decision else "",
        actor=(decision.actor.get_username() if decision.actor else "system") if decision else "",
        at=decision.created_at if decision else case.created_at,
    )


def customer_cases(case: Case, user: User | AnonymousUser) -> list[ContextRow]:
    """The customer's other cases the user may see, newest first, each with its latest decision (none when the case
    names no customer). Two queries whatever the customer's history."""
    if not case.customer_ref:
        return []
    others = list(
        Case.objects.visible_to(user)
        .filter(customer_ref=case.customer_ref)
        .exclude(pk=case.pk)
        .select_related("category")
        .defer("audit_draw")
        .order_by("-created_at", "-id")[:CONTEXT_ROWS]
    )
    latest: dict[int, Decision] = {}
    for decision in (
        Decision.objects.filter(case_id__in=[other.pk for other in others])
        .select_related("actor")
        .order_by("case_id", "created_at", "id")
    ):
        latest[decision.case_id] = decision  # the last one of each case wins
    return [_context_row(other, latest.get(other.pk), user) for other in others]


def similar_decisions(case: Case, user: User | AnonymousUser) -> list[ContextRow]:
    """Past human decisions in the category on cases with the same predicted label, newest first, across every
    queue of the category whose cases the user may see (`Decision.objects.visible_to`), never past it.

    Empty for a blind case: matching on the model's label would reveal it.
    """
    label = case.output.get("label") if isinstance(case.output, dict) else None
    if is_blind(case) or not isinstance(label, str):
        return []
    # The decision's own copy of the output (the model's output never changes after intake) is indexed.
    decisions = (
        Decision.objects.visible_to(user)
        .filter(output_before__label=label, case__category_id=case.category_id)
        .exclude(case_id=case.pk)
        .select_related("case__category", "actor")
        .defer("case__audit_draw")
        .order_by("-created_at", "-id")[:CONTEXT_ROWS]
    )
    # A shadow case escalated before anyone gave a label is still blind: its model label is not shown here either.
    return [_context_row(d.case, d, user) for d in decisions if not is_blind(d.case)]


def known_labels(category: Category, *, blind: bool = False) -> list[str]:
    """The labels a correction may pick in this category: its policy's sensitive labels, and the labels of its
    newest model outputs and human labels (bounded scans on indexed columns), sorted. For a blind case, no model
    output's label: the list would tell the reviewer what the model said about this very case."""
    labels: set[str] = set()
    policy = Policy.objects.filter(category=category).only("sensitive_labels").first()
    if policy is not None and isinstance(policy.sensitive_labels, list):
        labels.update(x for x in policy.sensitive_labels if isinstance(x, str))
    if not blind:
        outputs = Case.objects.filter(category=category).order_by("-created_at").values_list("output__label", flat=True)
        labels.update(x for x in outputs[:KNOWN_LABELS_SCAN] if isinstance(x, str))
    human = Label.objects.filter(category=category).order_by("-created_at").values_list("label", flat=True)
    labels.update(x for x in human[:KNOWN_LABELS_SCAN] if isinstance(x, str))
    return sorted(label for label in labels if label.strip())


@dataclass(frozen=True)
class ShadowAgreement:
    """A decided shadow case: what the model said, what the reviewer said, and whether they agree."""

    model_label: Any
    human_label: Any
    agrees: bool


def shadow_agreement(case: Case) -> ShadowAgreement | None:
    if case.route != Route.SHADOW or is_blind(case) or not isinstance(case.final_output, dict):
        return None
    model_label = case.output.get("label") if isinstance(case.output, dict) else None
    human_label = case.final_output.get("label")
    return ShadowAgreement(model_label=model_label, human_label=human_label, agrees=model_label == human_label)


def certifiable_reviewers() -> QuerySet[User]:
    """Whom a data curator may certify: the active people of the roles that decide cases, and anyone else who has
    made a label (a user given the permission by hand), by username."""
    made_labels = Exists(Label.objects.filter(reviewer=OuterRef("pk")))
    deciding_role = Q(groups__name__in=[REVIEWER, ESCALATION_MANAGER])
    people = User.objects.filter(is_active=True).filter(Q(pk__in=User.objects.filter(deciding_role)) | made_labels)
    return people.order_by("username")


def why_here(cases: list[Case]) -> dict[int, Decision]:
    """For cases of an escalation or expert queue: the decision that sent each one up (the latest escalation or
    moving reject), with who made it, in one query."""
    found: dict[int, Decision] = {}
    for decision in (
        Decision.objects.filter(case_id__in=[case.pk for case in cases], action__in=[Action.ESCALATE, Action.REJECT])
        .select_related("actor")
        .order_by("case_id", "created_at", "id")
    ):
        found[decision.case_id] = decision  # the last one of each case wins
    return found


def reassign_candidates(case: Case) -> dict[User, list[Queue]]:
    """Whom an escalation manager may hand the case to: the active people who work a queue of its category it may
    move to (audit work stays in the audit queue), each with those queues, by username. `services.reassign`
    checks the chosen person against the target queue again. A few queries per queue of the category."""
    people: dict[User, list[Queue]] = {}
    for queue in Queue.objects.filter(category_id=case.category_id).exclude(kind=QueueKind.AUDIT).order_by("slug"):
        for person in users_who_work(queue):
            people.setdefault(person, []).append(queue)
    return dict(sorted(people.items(), key=lambda item: item[0].get_username()))
