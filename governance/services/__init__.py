"""Every write of the governance layer, one module per subject: `categories` (categories, policies, pause and
resume), `model_versions` (registration and promotion), `incidents`, `notifications` and `audit` (anchoring the
chains). Webhook endpoints and deliveries are written by `governance.webhooks`; every event by `governance.events`.

Each service is atomic, stamps simple-history with the acting user and a reason, and appends an audit event. The
admin, the API and jobs call these; none of them writes these models another way.
"""

from governance.services.audit import anchor_audit_chains
from governance.services.categories import (
    POLICY_FIELDS,
    create_category,
    pause_category,
    policy_snapshot,
    resume_category,
    set_retrain_cadence,
    update_policy,
)
from governance.services.model_versions import (
    check_transition,
    model_version_for_intake,
    parse_model_label,
    promote_model_version,
    register_model_version,
)

__all__ = [
    "POLICY_FIELDS",
    "anchor_audit_chains",
    "check_transition",
    "create_category",
    "model_version_for_intake",
    "parse_model_label",
    "pause_category",
    "policy_snapshot",
    "promote_model_version",
    "register_model_version",
    "resume_category",
    "set_retrain_cadence",
    "update_policy",
]
