from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q
from django.db.models.fields.json import KeyTransform

from cases.models import Case
from governance.permissions import has_global_category_view

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

from reviews.choices import ACTIONS_NEEDING_REASON, OVERRIDE_ACTIONS, VERDICT_ACTIONS, Action, ReasonCode


class DecisionQuerySet(models.QuerySet["Decision"]):
    def visible_to(self, user: User | AnonymousUser) -> DecisionQuerySet:
        """Decisions on the cases the user may see."""
        if has_global_category_view(user):
            return self.all()
        return self.filter(case__in=Case.objects.visible_to(user))

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
