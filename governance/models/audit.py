"""The audit trail's rows: the append-only, hash-chained events and each chain's head (governance.events writes
and verifies them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from governance.choices import AuditKind
from governance.models.categories import Category
from governance.permissions import has_global_category_view, visible_case_ids

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def visible_to(self, user: User | AnonymousUser) -> AuditEventQuerySet:
        """Events of the cases the user may see, and category-level events of the categories they may see."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        # Which cases the user sees is the cases layer's rule, registered from above (governance.permissions).
        of_visible_cases = Q()
        for case_ids in visible_case_ids(user):
            of_visible_cases |= Q(case_id__in=case_ids)
        return self.filter(
            of_visible_cases
            | Q(case_id__isnull=True, category_slug__in=Category.objects.visible_to(user).values("slug"))
        )


class AuditEvent(models.Model):
    """One row of the append-only, hash-chained audit log (governance.events says what the chain proves).

    Each category has its own chain (`category_slug`, "" for events of no category) numbered by `seq`;
    `hash` is HMAC-SHA256(AUDIT_KEY, the chain's previous hash + this row's canonical JSON). The database refuses
    UPDATE, DELETE and TRUNCATE (triggers created by migration). References are plain values, not foreign keys,
    so nothing elsewhere can ever need to change or remove a row here.
    """

    seq = models.PositiveBigIntegerField(editable=False, help_text="The row's place in its category's chain.")
    created_at = models.DateTimeField(editable=False)
    kind = models.CharField(max_length=40, choices=AuditKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="The acting user's id; empty for the system.")
    actor_username = models.CharField(max_length=150, help_text="The acting user's name at the time, or 'system'.")
    category_slug = models.CharField(max_length=64, blank=True)
    case_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    # What the hash covers: these fields, as the canonical JSON object of their names (governance.events)...
    HASHED_FIELDS = ("seq", "created_at", "kind", "actor_id", "actor_username", "category_slug", "case_id", "payload")
    # ...and what a row holds besides its id: those, and the two links of the chain.
    STORED_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["category_slug", "seq"], name="%(app_label)s_%(class)s_chain_seq_unique"),
            # A constraint, not `unique=True` on the field: on PostgreSQL that would add a second, pattern-ops index
            # that no query uses and every appended event (10,000 in a busy SLA sweep) would write into.
            models.UniqueConstraint(fields=["hash"], name="%(app_label)s_%(class)s_hash_unique"),
        ]
        indexes = [models.Index(fields=["kind", "created_at"], name="governance_audit_kind_created")]

    def __str__(self) -> str:
        return f"{self.category_slug or '(global)'} #{self.seq} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """Where one category's chain ends; locking it keeps that chain's appends in one line across processes, while
    other categories' chains go on beside it. The database lets it move only forward."""

    chain = models.CharField(max_length=64, unique=True, help_text="The category's slug; empty for the global chain.")
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self) -> str:
        return f"audit chain {self.chain or '(global)'} at #{self.seq}"
