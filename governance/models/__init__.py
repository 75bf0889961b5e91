"""The governance layer's models, one module per subject; every model (and the helpers migrations name, such as
`default_audit_multipliers` and `generate_webhook_secret`) is importable from `governance.models` as before."""

from governance.models.audit import AuditChainHead, AuditEvent, AuditEventQuerySet
from governance.models.categories import (
    Category,
    CategoryQuerySet,
    InCategoryQuerySet,
    Policy,
    default_audit_multipliers,
    validate_audit_multipliers,
)
from governance.models.incidents import Incident, IncidentEntry
from governance.models.model_versions import ModelArtifact, ModelVersion, ModelVersionQuerySet
from governance.models.notifications import Notification
from governance.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryQuerySet,
    WebhookEndpoint,
    WebhookEndpointQuerySet,
    generate_webhook_secret,
    validate_webhook_events,
)

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AuditEventQuerySet",
    "Category",
    "CategoryQuerySet",
    "InCategoryQuerySet",
    "Incident",
    "IncidentEntry",
    "ModelArtifact",
    "ModelVersion",
    "ModelVersionQuerySet",
    "Notification",
    "Policy",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDeliveryQuerySet",
    "WebhookEndpoint",
    "WebhookEndpointQuerySet",
    "default_audit_multipliers",
    "generate_webhook_secret",
    "validate_audit_multipliers",
    "validate_webhook_events",
]
