from __future__ import annotations

from django.db import models


class QueueKind(models.TextChoices):
    QUICK = "quick", "Quick check"
    FULL = "full", "Full review"
    ESCALATION = "escalation", "Escalation"
    EXPERT = "expert", "Domain expert"
    AUDIT = "audit", "Audit of auto-approved cases"


class Route(models.TextChoices):
    AUTO = "auto", "Auto: acts on its own"
    QUICK_REVIEW = "quick_review", "Quick review"
    FULL_REVIEW = "full_review", "Full review"
    SHADOW = "shadow", "Shadow (blind review)"


# Where each route's cases wait (DESIGN.md, Queue).
QUEUE_KIND_FOR_ROUTE: dict[str, str | None] = {
    Route.AUTO: None,
    Route.QUICK_REVIEW: QueueKind.QUICK,
    Route.FULL_REVIEW: QueueKind.FULL,
    Route.SHADOW: QueueKind.FULL,
}


class CaseStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    CLAIMED = "claimed", "Claimed"
    APPROVED = "approved", "Approved"
    CORRECTED = "corrected", "Corrected"
    REJECTED = "rejected", "Rejected"
    ESCALATED = "escalated", "Escalated"
    AUTO_APPROVED = "auto_approved", "Auto-approved"


# A case in one of these waits for a person in its queue ("claimed" too: a claim expires).
OPEN_STATUSES = frozenset({CaseStatus.QUEUED, CaseStatus.CLAIMED, CaseStatus.ESCALATED})
FINAL_STATUSES = frozenset({CaseStatus.APPROVED, CaseStatus.CORRECTED, CaseStatus.REJECTED, CaseStatus.AUTO_APPROVED})


class AuditStatus(models.TextChoices):
    """An auto-approved case drawn for audit waits in the audit queue until an auditor confirms or flags it."""

    NONE = "", "Not audited"
    PENDING = "pending", "Waiting for audit"
    CONFIRMED = "confirmed", "Confirmed by audit"
    FLAGGED = "flagged", "Flagged by audit (a post-validation error)"


class Priority(models.TextChoices):
    # Stored as text; "urgent" sorts after "normal", so ordering by -priority puts urgent cases first.
    NORMAL = "normal", "Normal"
    URGENT = "urgent", "Urgent"
