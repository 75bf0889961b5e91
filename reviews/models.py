from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, F, Q
from django.db.models.fields.json import KeyTransform
from simple_history.models import HistoricalRecords

from cases.models import Case, Queue, visible_case
from governance.models import Category, InCategoryQuerySet
from governance.permissions import has_global_category_view

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

from reviews.choices import (
    ACTIONS_NEEDING_REASON,
    DOUBLE_REVIEW_PAIRED,
    OVERRIDE_ACTIONS,
    TASK_LABEL_SOURCES,
    VERDICT_ACTIONS,
    Action,
    DoubleReviewStatus,
    LabelSource,
    ReasonCode,
)


class DecisionQuerySet(models.QuerySet["Decision"]):
    def visible_to(self, user: User | AnonymousUser) -> DecisionQuerySet:
        """Decisions on the cases the user may see, and the user's own decisions wherever their case went since
        (a reviewer keeps sight of a case they escalated out of their queues)."""
        if has_global_category_view(user):
            return self.all()
        if not user.is_authenticated:
            return self.none()
        # A condition on each decision's own case, joined (`visible_case(..., through="case__")`), rather than a
        # subquery of every visible case: ORed with the user's own decisions, PostgreSQL hashes a subquery's
        # whole result first (170,000 cases of a queue at 1,000,000 cases: 0.4 s for the ten rows of a panel),
        # where a list read newest first stops after a page.
        return self.filter(visible_case(user, through="case__") | Q(actor_id=user.pk))

    def override_counts(self) -> dict[str, int]:
        """How many of these decisions judged a model output (`reviewed`), and how many judged it wrong
        (`overridden`): the one definition of an override, in one query."""
        return self.aggregate(
            reviewed=Count("id", filter=Q(action__in=sorted(VERDICT_ACTIONS))),
            overridden=Count("id", filter=Q(action__in=sorted(OVERRIDE_ACTIONS))),
        )

    def bound_contents(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every decision's id and what its audit event vouches for, in id order (`verify_audit` reads these)."""
        for decision in self.order_by("pk").iterator(chunk_size=5000):
            yield decision.pk, decision.bound_content()


class Decision(models.Model):
    """One human decision on a case. Append-only: the database refuses UPDATE and DELETE (migration triggers)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="decisions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    output_before = models.JSONField(default=dict)
    output_after = models.JSONField(null=True, blank=True)
    reason_code = models.CharField(max_length=16, choices=ReasonCode.choices, blank=True)
    notes = models.TextField(blank=True)
    seconds_spent = models.PositiveIntegerField(null=True, blank=True)
    batch_id = models.UUIDField(null=True, blank=True, db_index=True)
    model_version = models.CharField(max_length=201, help_text="name@version of the model that produced the output.")
    policy_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=Action.values), name="%(app_label)s_%(class)s_action_valid"),
            models.CheckConstraint(
                condition=~Q(action__in=sorted(ACTIONS_NEEDING_REASON)) | ~Q(reason_code=""),
                name="%(app_label)s_%(class)s_reason_required",
            ),
        ]
        indexes = [
            models.Index(fields=["actor", "created_at"], name="reviews_decision_actor_created"),
            # "Similar past decisions": the newest decisions on outputs with the same predicted label.
            # The same expression the `output_before__label=...` lookup compiles to (-> on PostgreSQL).
            models.Index(
                KeyTransform("label", "output_before"), "created_at", "id", name="reviews_decision_label_recent"
            ),
            models.Index(fields=["created_at", "id"], name="reviews_decision_recent"),
            # The KPIs' escalation rate finds the escalated cases from these few, not by testing every case.
            models.Index(fields=["case"], condition=Q(action=Action.ESCALATE), name="reviews_decision_escalations"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on case {self.case_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("Decisions are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("Decisions are append-only.")

    def bound_content(self) -> dict[str, Any]:
        """What the decision's audit event vouches for (its digest is in the event's payload; governance.events)."""
        return {
            "id": self.pk,
            "case_id": self.case_id,
            "actor_id": self.actor_id,
            "action": self.action,
            "output_before": self.output_before,
            "output_after": self.output_after,
            "reason_code": self.reason_code,
            "notes": self.notes,
            "seconds_spent": self.seconds_spent,
            "batch_id": str(self.batch_id) if self.batch_id else None,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "created_at": self.created_at.isoformat(),
        }


class LabelQuerySet(models.QuerySet["Label"]):
    def visible_to(self, user: User | AnonymousUser) -> LabelQuerySet:
        """Labels of the categories the user may see."""
        return self.filter(category__in=Category.objects.visible_to(user))

    def current(self) -> LabelQuerySet:
        """The labels no later human word has superseded: one per case at most."""
        return self.filter(superseded=False)


class Label(models.Model):
    """A training example born from a human verdict, in the same transaction as the decision that made it.

    The last human word on a case wins: a newer label marks the older ones `superseded` (they are kept).
    `certified` is whether the reviewer was certified for the category at that moment; `passed_gate` is the
    quality gate (certified, and no unresolved disagreement on it), which export and training filter on.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="labels")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="labels")
    decision = models.OneToOneField(
        Decision,
        on_delete=models.PROTECT,
        related_name="label",
        null=True,
        blank=True,
        help_text="The decision that made it; none for a double review's labels (the case was already final).",
    )
    source = models.CharField(max_length=16, choices=LabelSource.choices)
    label = models.CharField(max_length=200)
    output = models.JSONField(help_text="The output the human verdict stands for (with its `label`).")
    model_label = models.CharField(max_length=200, blank=True, help_text="What the model had said.")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels", null=True, blank=True
    )
    reason_code = models.CharField(max_length=16, choices=ReasonCode.choices, blank=True)
    model_version = models.CharField(max_length=201)
    policy_version = models.PositiveIntegerField()
    certified = models.BooleanField(help_text="The reviewer was certified for the category when they decided.")
    passed_gate = models.BooleanField(help_text="Certified, and no unresolved disagreement hangs on it.")
    superseded = models.BooleanField(default=False, help_text="A later human word on the case replaced it.")
    created_at = models.DateTimeField()

    objects = LabelQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=LabelSource.values), name="%(app_label)s_%(class)s_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(passed_gate=False) | Q(certified=True), name="%(app_label)s_%(class)s_gate_needs_cert"
            ),
            models.CheckConstraint(
                condition=Q(decision__isnull=False) | Q(source__in=sorted(TASK_LABEL_SOURCES)),
                name="%(app_label)s_%(class)s_decision_or_task",
            ),
        ]
        indexes = [
            # The export streams one category's labels in time order, optionally only those past the gate.
            models.Index(fields=["category", "created_at", "id"], name="reviews_label_category_time"),
            models.Index(fields=["case", "superseded"], name="reviews_label_case_current"),
        ]

    def __str__(self) -> str:
        return f"{self.label} for case {self.case_id} ({self.source})"


class ReviewerCertification(models.Model):
    """A reviewer certified for a category by a data curator, with why; a revocation keeps the row (and its
    history), so one can always say whether someone was certified at a given moment."""

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certifications")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="certifications")
    active = models.BooleanField(default=True)
    certified_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(help_text="Why certified (or, once revoked, why revoked).")

    history = HistoricalRecords()
    objects = InCategoryQuerySet["ReviewerCertification"].as_manager()

    class Meta:
        ordering = ["category__slug", "reviewer__username"]
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "category"], name="%(app_label)s_%(class)s_once_per_category")
        ]

    def __str__(self) -> str:
        state = "certified" if self.active else "revoked"
        return f"{self.reviewer} {state} for {self.category}"


class DoubleReviewQuerySet(InCategoryQuerySet["DoubleReview"]):
    def held(self, now: datetime) -> DoubleReviewQuerySet:
        """Tasks someone holds right now (a claim is held while `claimed_until > now`, as a case's is)."""
        return self.filter(claimed_by__isnull=False, claimed_until__gt=now)

    def unheld(self, now: datetime) -> DoubleReviewQuerySet:
        return self.filter(Q(claimed_by__isnull=True) | Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))

    def for_worker(self, user: User, queue_ids: set[int] | None) -> DoubleReviewQuerySet:
        """The open tasks this person may work: second reviews of the queues they work whose first verdict was not
        theirs, and adjudications in the expert queues they work of pairs they were not part of. `queue_ids`: the
        queues they work (None: every queue, a superuser). The one rule of who may take which task."""
        second = Q(status=DoubleReviewStatus.SECOND_REVIEW) & ~Q(first_reviewer=user)
        adjudicate = Q(status=DoubleReviewStatus.ADJUDICATION) & ~Q(first_reviewer=user) & ~Q(second_reviewer=user)
        if queue_ids is not None:
            second &= Q(queue_id__in=queue_ids)
            adjudicate &= Q(adjudication_queue_id__in=queue_ids)
        return self.filter(second | adjudicate)

    def paired(self) -> DoubleReviewQuerySet:
        """Double reviews whose second verdict is in: what agreement is computed over."""
        return self.filter(status__in=sorted(DOUBLE_REVIEW_PAIRED))

    def pair_counts(self) -> Any:
        """How many paired double reviews each (category, first reviewer, second reviewer, first label, second
        label) has: the whole input of Cohen's kappa, in one grouped query (a row per combination, never per
        review)."""
        return (
            self.paired()
            .values(
                "category_id",
                first=F("first_reviewer__username"),
                second=F("second_reviewer__username"),
                first_said=F("first_label__label"),
                second_said=F("second_label__label"),
            )
            .annotate(n=Count("id"))
            .order_by()
        )


class DoubleReview(models.Model):
    """A second, blind review of a case a person already decided, drawn at `double_review_rate` (DESIGN.md,
    Feedback loop), and, when the pair disagrees, its adjudication in the category's expert queue.

    The case itself was final when this began and stays as it is: nothing here changes what already acted. What
    changes is the labels: a disagreement holds both labels back from the quality gate until an adjudicator's label
    supersedes them. The second reviewer is anyone but the first who works the first verdict's queue; the
    adjudicator anyone but the two who works the expert queue (`for_worker`).
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="double_reviews")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="double_reviews")
    first_decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="double_review")
    first_label = models.OneToOneField(Label, on_delete=models.PROTECT, related_name="+")
    first_reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    queue = models.ForeignKey(
        Queue, on_delete=models.PROTECT, related_name="+", help_text="Where the first verdict was given."
    )
    policy_version = models.PositiveIntegerField(help_text="The policy version whose rate drew the case.")
    draw = models.FloatField(help_text="The case's double-review draw, in [0, 1).")
    status = models.CharField(
        max_length=16, choices=DoubleReviewStatus.choices, default=DoubleReviewStatus.SECOND_REVIEW
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    second_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_label = models.OneToOneField(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    second_at = models.DateTimeField(null=True, blank=True)
    agreed = models.BooleanField(null=True, blank=True)
    adjudication_queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    adjudicated_label = models.OneToOneField(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DoubleReviewQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DoubleReviewStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
            # Never the same person twice: the database says so too, whatever a caller forgets.
            models.CheckConstraint(
                condition=~Q(second_reviewer=F("first_reviewer")), name="%(app_label)s_%(class)s_second_is_other"
            ),
            models.CheckConstraint(
                condition=~Q(adjudicator=F("first_reviewer")) & ~Q(adjudicator=F("second_reviewer")),
                name="%(app_label)s_%(class)s_adjudicator_is_third",
            ),
            models.CheckConstraint(
                condition=Q(status=DoubleReviewStatus.SECOND_REVIEW)
                | (Q(second_label__isnull=False) & Q(agreed__isnull=False)),
                name="%(app_label)s_%(class)s_paired_has_second",
            ),
            models.CheckConstraint(
                condition=~Q(status=DoubleReviewStatus.ADJUDICATED) | Q(adjudicated_label__isnull=False),
                name="%(app_label)s_%(class)s_adjudicated_has_label",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "queue"], name="reviews_double_open_queue"),
            models.Index(fields=["category", "second_at"], name="reviews_double_paired_time"),
        ]

    def __str__(self) -> str:
        return f"double review #{self.pk} of case {self.case_id} ({self.status})"

    def holder_id_at(self, now: datetime) -> int | None:
        """Whoever holds the task at `now`, or None (an expired claim holds nothing), as `held` says in SQL."""
        if self.claimed_by_id is None or self.claimed_until is None or self.claimed_until <= now:
            return None
        return int(self.claimed_by_id)


class LabelExportQuerySet(models.QuerySet["LabelExport"]):
    def visible_to(self, user: User | AnonymousUser) -> LabelExportQuerySet:
        """One's own exports (a superuser sees all): a file of labels is for whoever asked for it."""
        if not user.is_authenticated:
            return self.none()
        return self.all() if user.is_superuser else self.filter(requested_by_id=user.pk)


class LabelExport(models.Model):
    """A label export started from the admin: run by an RQ job that writes the file and counts its progress, so
    a million labels do not hold a request open; the requester downloads it when it is done."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    params = models.JSONField(default=dict, help_text="The export's filters and format, as the API takes them.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(null=True, blank=True)
    written = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = LabelExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"label export #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        """The share written, 0 to 1 (1 once done, whatever the count)."""
        if self.status == self.Status.DONE:
            return 1.0
        return self.written / self.total if self.total else 0.0
