from __future__ import annotations

from django.db import models


class Pattern(models.TextChoices):
    VALIDATOR = "validator", "Validator: every output is reviewed before it acts"
    EXCEPTION = "exception", "Exception: outputs above the auto threshold act, the rest go to humans"
    TEACHER = "teacher", "Teacher: outputs act and a sample is reviewed afterwards"


class Stage(models.TextChoices):
    SHADOW = "shadow", "Shadow: the model never acts, reviewers decide blind"
    LIVE = "live", "Live"


class Consequence(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ModelStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    SHADOW = "shadow", "Shadow"
    CANARY = "canary", "Canary"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


# Only these statuses may let a case act on its own (DESIGN.md, ModelVersion).
MODEL_STATUSES_THAT_MAY_ACT = frozenset({ModelStatus.CANARY, ModelStatus.ACTIVE})

# The forward order of a rollout; any status may go to `retired` (a rollback) and a retired version may be
# promoted straight back to `active` (undoing a rollback).
MODEL_STATUS_ORDER = [
    ModelStatus.REGISTERED,
    ModelStatus.SHADOW,
    ModelStatus.CANARY,
    ModelStatus.ACTIVE,
    ModelStatus.RETIRED,
]


class AuditKind(models.TextChoices):
    CASE_ROUTED = "case.routed", "Case routed"
    CASE_DECIDED = "case.decided", "Case decided"
    CASE_ESCALATED = "case.escalated", "Case escalated"
    CASE_REASSIGNED = "case.reassigned", "Case reassigned"
    CASE_AUDITED = "case.audited", "Auto-approved case audited"
    BATCH_APPROVED = "batch.approved", "Cases approved together in a batch"
    CASE_DOUBLE_REVIEWED = "case.double_reviewed", "Case given a second, blind review"
    CASE_ADJUDICATED = "case.adjudicated", "Double-review disagreement adjudicated"
    SLA_BREACHED = "case.sla_breached", "Case overdue (SLA breached)"
    INCIDENT_OPENED = "incident.opened", "Incident opened"
    INCIDENT_CHANGED = "incident.changed", "Incident stage changed"
    CATEGORY_CREATED = "category.created", "Category created"
    POLICY_CHANGED = "policy.changed", "Policy changed"
    CATEGORY_PAUSED = "category.paused", "Category paused"
    CATEGORY_RESUMED = "category.resumed", "Category resumed"
    MODEL_REGISTERED = "model_version.registered", "Model version registered"
    MODEL_STATUS_CHANGED = "model_version.status_changed", "Model version status changed"
    TRAINING_RUN = "model.training_run", "Built-in model training run"
    QUEUE_CHANGED = "queue.changed", "Queue changed"
    PURGE = "data.purged", "Data purged"
    AUDIT_ANCHOR = "audit.anchor", "Audit chain anchored"


class WebhookEvent(models.TextChoices):
    """The events an integration may subscribe to (DESIGN.md, REST API v1): each is the audit event of that kind."""

    CASE_ROUTED = "case.routed", "Case routed"
    CASE_DECIDED = "case.decided", "Case decided"
    CASE_ESCALATED = "case.escalated", "Case escalated"
    CATEGORY_PAUSED = "category.paused", "Category paused"
    CATEGORY_RESUMED = "category.resumed", "Category resumed"
    INCIDENT_OPENED = "incident.opened", "Incident opened"
    AUDIT_ANCHOR = "audit.anchor", "Audit chain anchored"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"


class IncidentStage(models.TextChoices):
    DETECT = "detect", "Detect"
    CONTAIN = "contain", "Contain"
    INVESTIGATE = "investigate", "Investigate"
    REMEDIATE = "remediate", "Remediate"
    COMMUNICATE = "communicate", "Communicate"
    CLOSED = "closed", "Closed"
