"""The governance admin: categories with their versioned policy, model versions, and the audit log.

Every write calls a service in `governance.services` (create, change policy, pause, resume, register, promote);
the admin only collects the input and the reason. Visibility comes from `governance.admin_mixins`.
"""

from governance.admin.audit import AuditEventAdmin
from governance.admin.categories import CategoryAdmin, PolicyAdmin
from governance.admin.incidents import IncidentAdmin, NotificationAdmin
from governance.admin.model_versions import ModelVersionAdmin
from governance.admin.webhooks import WebhookDeliveryAdmin, WebhookEndpointAdmin

__all__ = [
    "AuditEventAdmin",
    "CategoryAdmin",
    "IncidentAdmin",
    "NotificationAdmin",
    "ModelVersionAdmin",
    "PolicyAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
]
