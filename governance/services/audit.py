"""Anchoring the audit chains outside the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from governance import events
from governance.choices import AuditKind
from governance.models import AuditEvent
from governance.permissions import MODEL_STEWARD
from governance.services.notifications import notify, users_in_role

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger("hitl.audit")


def anchor_audit_chains(*, user: User | None = None) -> dict[str, Any]:
    """Copy each audit chain's head outside the database (hourly; DESIGN.md, Audit and privacy).

    For every chain that moved since its last anchor: a line in the anchor log (`settings.AUDIT_ANCHOR_FILE`,
    which `verify_audit` reads back), a line in the application log, a notice to the model stewards, and an
    `audit.anchor` event in the chain itself, which reaches the category's webhooks. A chain whose head is its
    own last anchor has not moved: running the job again anchors nothing twice.
    """
    anchored: list[dict[str, Any]] = []
    for head in events.current_heads():
        last = AuditEvent.objects.filter(category_slug=head.chain, seq=head.seq).only("kind").first()
        if last is not None and last.kind == AuditKind.AUDIT_ANCHOR:
            continue
        anchor = {"chain": head.chain, "seq": head.seq, "hash": head.hash, "at": timezone.now().isoformat()}
        events.write_anchor_line(anchor)
        logger.info("audit.anchor chain=%r seq=%d hash=%s", head.chain, head.seq, head.hash)
        with transaction.atomic():
            events.record(
                AuditKind.AUDIT_ANCHOR,
                actor=user,
                category_slug=head.chain,
                payload={"anchored_seq": head.seq, "anchored_hash": head.hash},
            )
        anchored.append(anchor)
    if anchored:
        lines = "\n".join(f"{a['chain'] or '(global)'}: seq {a['seq']} hash {a['hash']}" for a in anchored)
        notify(
            users_in_role(MODEL_STEWARD),
            subject=f"Audit anchor: {len(anchored)} chain head(s)",
            body=f"Keep this outside the database; `manage.py verify_audit` checks against it.\n{lines}",
            kind="audit.anchor",
        )
    return {"anchored": len(anchored), "chains": [a["chain"] for a in anchored]}
