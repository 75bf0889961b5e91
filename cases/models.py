from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from cases.choices import OPEN_STATUSES, AuditStatus, CaseStatus, Priority, QueueKind, Route
from cases.permissions import worked_queue_ids
from governance.models import Category, ModelVersion
from governance.permissions import full_access_category_ids, has_global_category_view

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


# The share of a queue's SLA after which a waiting case is "near breach" (DESIGN.md, Time: warn at 80 %).
SLA_WARN_SHARE = 0.8


class QueueQuerySet(models.QuerySet["Queue"]):
    def visible_to(self, user: User | AnonymousUser) -> QueueQuerySet:
        """Queues the user works, plus every queue of the categories they have full access to."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        return self.filter(Q(pk__in=worked_queue_ids(user)) | Q(category_id__in=full_access_category_ids(user)))

    def category_ids_worked_by(self, user: User | AnonymousUser) -> set[int]:
        """The categories of the queues the user works: whoever works a queue sees its category (registered into
        governance's category visibility from CasesConfig.ready())."""
        return set(self.filter(pk__in=worked_queue_ids(user)).values_list("category_id", flat=True))


class Queue(models.Model):
    """Where human work waits: one per category and kind, with its SLA and where overdue cases go next."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="queues")
    kind = models.CharField(max_length=16, choices=QueueKind.choices)
    sla = models.DurationField(help_text="How long a case may wait here, e.g. 4:00:00 for four hours.")
    next_queue = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where an overdue case goes.",
    )
    allow_batch = models.BooleanField(default=False, help_text="Reviewers may approve several cases at once here.")
    review_floor_seconds = models.PositiveIntegerField(
        default=5, help_text="A median decision time below this, with ~all approvals, looks like rubber-stamping."
    )

    history = HistoricalRecords()
    objects = QueueQuerySet.as_manager()

    class Meta:
        ordering = ["category__slug", "kind"]
        permissions = [("work_queue", "Can see, claim and decide the cases of this queue")]
        constraints = [
            models.UniqueConstraint(fields=["category", "kind"], name="%(app_label)s_%(class)s_one_per_kind"),
            models.CheckConstraint(condition=Q(sla__gt=timedelta(0)), name="%(app_label)s_%(class)s_sla_positive"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def waiting_status(self) -> str:
        """The status of an unclaimed case waiting here: escalation and expert queues hold escalated cases."""
        return CaseStatus.ESCALATED if self.kind in (QueueKind.ESCALATION, QueueKind.EXPERT) else CaseStatus.QUEUED

    def near_breach_after(self, now: datetime) -> datetime:
        """A case waiting here is near its breach once 80 % of the SLA has passed (`SLA_WARN_SHARE`), that is
        once its due time is at most this instant. The SLA sweep warns from here; the queue stats count from here.
        """
        return now + self.sla * (1 - SLA_WARN_SHARE)


class CaseQuerySet(models.QuerySet["Case"]):
    def held(self, now: datetime) -> CaseQuerySet:
        """Cases someone holds right now: a claim is held while `claimed_until > now` (see `Case.holder_id_at`)."""
        return self.filter(claimed_by__isnull=False, claimed_until__gt=now)

    def unheld(self, now: datetime) -> CaseQuerySet:
        """Cases nobody holds right now: never claimed, released, or a claim that has expired."""
        return self.filter(Q(claimed_by__isnull=True) | Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))

    def waiting(self) -> CaseQuerySet:
        """Cases that wait for a person: open ones, and auto-approved ones drawn for audit not yet audited."""
        return self.filter(Q(status__in=OPEN_STATUSES) | Q(audit_status=AuditStatus.PENDING))

    def waiting_in(self, queue: Queue) -> CaseQuerySet:
        """The cases waiting in one queue (one indexed condition per queue kind)."""
        if queue.kind == QueueKind.AUDIT:
            return self.filter(queue=queue, audit_status=AuditStatus.PENDING)
        return self.filter(queue=queue, status__in=OPEN_STATUSES)

    def to_warn_in(self, queue: Queue, now: datetime) -> CaseQuerySet:
        """The cases an SLA sweep at `now` warns about in this queue: waiting, not warned yet, and due from `now`
        up to the queue's near-breach point."""
        return self.waiting_in(queue).filter(
            sla_warned_at__isnull=True, due_at__gte=now, due_at__lte=queue.near_breach_after(now)
        )

    def visible_to(self, user: User | AnonymousUser) -> CaseQuerySet:
        """Cases in the queues the user works, or in categories they have full access to. Apply before lookup."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        return self.filter(visible_case(user))


def visible_case(user: User, *, through: str = "") -> Q:
    """The condition `Case.objects.visible_to` applies for a signed-in user without a global view: the case is in
    a queue they work, or in a category they have full access to. `through` ("case__") puts it on the case that
    rows of another model point to, so a read of those rows checks each one's case as it joins it."""
    return Q(**{f"{through}queue_id__in": worked_queue_ids(user)}) | Q(
        **{f"{through}category_id__in": full_access_category_ids(user)}
    )


class Case(models.Model):
    """One model output awaiting or past its decision, with the route it took and why."""

    # No index of its own: category_id leads the unique external id and the KPI indexes, which serve its lookups;
    # one index fewer for every insert and every move to maintain.
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="cases", db_index=False)
    external_id = models.CharField(max_length=200)
    input = models.JSONField(default=dict)
    output = models.JSONField(default=dict, help_text="The model's output: label, optional text, reasoning, score.")
    confidence = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="cases")
    rules_fired = models.JSONField(default=list, blank=True)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    segment = models.JSONField(default=dict, blank=True, help_text="Channel, geography, tier...")
    segment_key = models.CharField(max_length=255, blank=True, help_text="The segment as canonical text, for lookups.")
    customer_ref = models.CharField(max_length=200, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)

    route = models.CharField(max_length=16, choices=Route.choices)
    route_reasons = models.JSONField(default=list)
    policy_version = models.PositiveIntegerField()
    audit_sampled = models.BooleanField(default=False)
    audit_draw = models.JSONField(default=dict, blank=True, help_text="The ramp and audit draws, rates and strata.")

    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    due_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_cases"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.QUEUED)
    final_output = models.JSONField(null=True, blank=True)
    audit_status = models.CharField(max_length=16, choices=AuditStatus.choices, blank=True, default=AuditStatus.NONE)
    sla_warned_at = models.DateTimeField(
        null=True, blank=True, help_text="When the SLA sweep warned that 80 % of this queue's SLA had passed."
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    # History is read by case (`id`), by date (`history_date`, the KPI rollup) and by user; the indexes simple-history
    # would copy from the case's own fields serve no query there and cost every history row (an SLA sweep writes
    # 10,000 at once) an index entry each.
    history = HistoricalRecords(
        excluded_fields=["updated_at"],
        no_db_index=["category", "model_version", "queue", "claimed_by", "created_at"],
    )
    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_pii", "Can see personal data in case inputs (others see the redacted view)")]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "external_id"], name="%(app_label)s_%(class)s_unique_external_id"
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="%(app_label)s_%(class)s_confidence_0_1"
            ),
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0), name="%(app_label)s_%(class)s_value_not_negative"
            ),
            models.CheckConstraint(condition=Q(route__in=Route.values), name="%(app_label)s_%(class)s_route_valid"),
            models.CheckConstraint(
                condition=Q(status__in=CaseStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
        ]
        indexes = [
            # A queue's work list and claim-next: waiting cases, urgent first, then by due time. Partial, so a
            # scan stops at the first row it can lock instead of sorting the whole backlog (bench/review.py).
            models.Index(
                fields=["queue", "-priority", "due_at", "id"],
                condition=Q(status__in=sorted(OPEN_STATUSES)),
                name="cases_case_waiting_work",
            ),
            models.Index(
                fields=["queue", "-priority", "due_at", "id"],
                condition=Q(audit_status=AuditStatus.PENDING),
                name="cases_case_audit_work",
            ),
            # Claim-next's first question, "which cases of this queue do I hold?": the claimed waiting cases by
            # holder, so the answer is a probe of a handful of rows, not a walk of the queue's backlog.
            models.Index(
                fields=["claimed_by", "queue"],
                condition=Q(claimed_by__isnull=False, status__in=sorted(OPEN_STATUSES)),
                name="cases_case_held",
            ),
            # The SLA sweep's warnings: waiting cases not warned yet, by queue and due time. Partial, so the index
            # holds only what a sweep may still warn about and an idle sweep reads almost nothing.
            models.Index(
                fields=["queue", "due_at"],
                condition=Q(sla_warned_at__isnull=True, status__in=sorted(OPEN_STATUSES)),
                name="cases_case_to_warn",
            ),
            models.Index(
                fields=["queue", "due_at"],
                condition=Q(sla_warned_at__isnull=True, audit_status=AuditStatus.PENDING),
                name="cases_case_audit_to_warn",
            ),
            # The SLA sweep: open cases past (or near) their due time, and audits waiting past theirs.
            models.Index(fields=["status", "due_at"], name="cases_case_status_due"),
            models.Index(fields=["audit_status", "due_at"], name="cases_case_audit_due"),
            # KPIs and listings per category over a time window.
            models.Index(fields=["category", "created_at"], name="cases_case_category_created"),
            # The KPIs' resolution times: the cases of a category made final in an hour (`metrics.kpis.parts`).
            models.Index(fields=["category", "decided_at"], name="cases_case_category_decided"),
            # "A segment not seen in the last 30 days" at intake.
            models.Index(fields=["category", "segment_key", "created_at"], name="cases_case_segment_seen"),
            models.Index(fields=["customer_ref"], name="cases_case_customer_ref"),
            # Looking a case up by the integration's id alone (search, support questions).
            models.Index(fields=["external_id"], name="cases_case_external_id"),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.external_id})"

    def holder_id_at(self, now: datetime) -> int | None:
        """The id of whoever holds the case at `now`, or None: the one rule of a claim, which `held`/`unheld`
        say in SQL. An expired claim holds nothing, even before anyone clears it."""
        if self.claimed_by_id is None or self.claimed_until is None or self.claimed_until <= now:
            return None
        return int(self.claimed_by_id)

    def status_at(self, now: datetime) -> str:
        """The status as it reads at `now`: a "claimed" case whose claim has run out waits again (queued, or
        escalated in an escalation or expert queue), as `holder_id_at` says, before anyone clears the claim."""
        if self.status == CaseStatus.CLAIMED and self.holder_id_at(now) is None and self.queue is not None:
            return self.queue.waiting_status
        return self.status

    def is_held_by_other(self, user: User, now: datetime) -> bool:
        holder = self.holder_id_at(now)
        return holder is not None and holder != user.pk


class SlaBreach(models.Model):
    """A case that waited past its due time in a queue: one row per case and due time (the SLA breach KPI)."""

    # Without indexes of their own: each leads one of the indexes below (once_per_due_time, queue_detected).
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="sla_breaches", db_index=False)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="sla_breaches", db_index=False)
    due_at = models.DateTimeField()
    detected_at = models.DateTimeField()
    moved_to = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "due_at"], name="%(app_label)s_%(class)s_once_per_due_time")
        ]
        indexes = [models.Index(fields=["queue", "detected_at"], name="cases_breach_queue_detected")]

    def __str__(self) -> str:
        return f"case {self.case_id} overdue in {self.queue_id} since {self.due_at:%Y-%m-%d %H:%M}"


class ShadowPredictionQuerySet(models.QuerySet["ShadowPrediction"]):
    def visible_to(self, user: User | AnonymousUser) -> ShadowPredictionQuerySet:
        """With the model version they measure: whoever sees its category."""
        return self.filter(model_version__in=ModelVersion.objects.visible_to(user))


class ShadowPrediction(models.Model):
    """What a built-in version in `shadow` said about a case that arrived while it was proving itself.

    Never shown to the reviewer and never acting: it exists so the version's agreement with people can be measured
    on live traffic, beside the version that did answer the case (DESIGN.md, Feedback loop). One per case and
    version; the case's own answer stays on the case."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="shadow_predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="shadow_predictions")
    label = models.CharField(max_length=200)
    confidence = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ShadowPredictionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "model_version"], name="%(app_label)s_%(class)s_once_per_version"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="%(app_label)s_%(class)s_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} said {self.label!r} on case {self.case_id}"
