"""Decisions bound to their audit events, TRUNCATE refused on decisions, and the audit trail written before the
keyed chains re-sealed into them.

Events written before governance 0008 sit in one unkeyed chain (sha256). This migration first checks that old
chain as it was (and refuses to go on if it is broken, naming the row: a broken trail is not silently blessed),
then adds each decision's digest to its event and re-seals every event, in its original order, into its
category's chain under AUDIT_KEY. A database with no events has nothing to re-seal. The code is frozen here on
purpose: the live hashing may change, what this migration did may not.
"""

import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations
from django.db.models import BigIntegerField, F, Value

from governance import append_only

DECISIONS = "reviews_decision"
EVENTS = "governance_auditevent"
GENESIS = "0" * 64
OFFSET = 10**12


def _canonical(event, seq):
    body = {
        "seq": seq,
        "created_at": event.created_at.isoformat(),
        "kind": event.kind,
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "category_slug": event.category_slug,
        "case_id": event.case_id,
        "payload": event.payload,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(decision):
    content = {
        "id": decision.pk,
        "case_id": decision.case_id,
        "actor_id": decision.actor_id,
        "action": decision.action,
        "output_before": decision.output_before,
        "output_after": decision.output_after,
        "reason_code": decision.reason_code,
        "notes": decision.notes,
        "seconds_spent": decision.seconds_spent,
        "batch_id": str(decision.batch_id) if decision.batch_id else None,
        "model_version": decision.model_version,
        "policy_version": decision.policy_version,
        "created_at": decision.created_at.isoformat(),
    }
    text = json.dumps(json.loads(json.dumps(content)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def reseal(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    append_only.run(schema_editor, append_only.create_statements(vendor, DECISIONS))
    AuditEvent = apps.get_model("governance", "AuditEvent")
    Head = apps.get_model("governance", "AuditChainHead")
    Decision = apps.get_model("reviews", "Decision")
    old = list(AuditEvent.objects.order_by("id"))
    if not old:
        return
    prev = GENESIS
    for event in old:  # the old single chain, as it was
        expected = hashlib.sha256((prev + _canonical(event, event.seq)).encode()).hexdigest()
        if event.prev_hash != prev or event.hash != expected:
            raise RuntimeError(
                f"The audit chain is broken at seq {event.seq} (id {event.pk}); it is not re-sealed. "
                "Investigate with the previous release's `manage.py verify_audit`."
            )
        prev = event.hash
    digests = {d.pk: _digest(d) for d in Decision.objects.all()}
    append_only.run(schema_editor, append_only.drop_statements(vendor, EVENTS))
    append_only.run(schema_editor, append_only.head_drop_statements(vendor))
    key = str(settings.AUDIT_KEY).encode()
    # Out of the way of the new numbers; typed bigint, as a bare int parameter bound by the server would be int4.
    AuditEvent.objects.update(seq=F("seq") + Value(OFFSET, output_field=BigIntegerField()))
    heads = {}
    for event in old:
        decision_id = event.payload.get("decision_id") if isinstance(event.payload, dict) else None
        if isinstance(decision_id, int) and decision_id in digests:
            event.payload = {**event.payload, "decision_digest": digests[decision_id]}
        seq, prev_hash = heads.get(event.category_slug, (0, GENESIS))
        event.seq, event.prev_hash = seq + 1, prev_hash
        event.hash = hmac.new(key, (prev_hash + _canonical(event, event.seq)).encode(), hashlib.sha256).hexdigest()
        heads[event.category_slug] = (event.seq, event.hash)
    AuditEvent.objects.bulk_update(old, ["seq", "prev_hash", "hash", "payload"], batch_size=1000)
    Head.objects.all().delete()
    Head.objects.bulk_create([Head(chain=chain, seq=seq, hash=h) for chain, (seq, h) in heads.items()])
    append_only.run(schema_editor, append_only.create_statements(vendor, EVENTS))
    append_only.run(schema_editor, append_only.head_create_statements(vendor))


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0004_work_indexes"),
        ("governance", "0009_audit_anchor_kind"),
    ]

    operations = [migrations.RunPython(reseal, migrations.RunPython.noop)]
