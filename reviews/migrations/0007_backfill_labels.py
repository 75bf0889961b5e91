"""Labels for the decisions made before labels existed (DESIGN.md, Feedback loop), by the rule of the time,
frozen here: an approve, a correct, a shadow answer, an audit confirm or flag, and the final word of an
escalation or expert queue label the case; a reject labels nothing but ends the case's earlier labels. Nobody was
certified then, so none of these labels passes the quality gate."""

from django.db import migrations

FINAL_WORD_QUEUES = ("escalation", "expert")


def _facts(decision, route, final_word):
    action = decision.action
    if action == "confirm":
        return "audit_confirm", dict(decision.output_before or {})
    if action == "flag":
        return "audit_flag", dict(decision.output_after or {})
    if action not in ("approve", "correct") or not isinstance(decision.output_after, dict):
        return None
    if route == "shadow":
        return "shadow", dict(decision.output_after)
    if final_word:
        return "escalation", dict(decision.output_after)
    return action, dict(decision.output_after)


def backfill(apps, schema_editor):
    decision_model = apps.get_model("reviews", "Decision")
    label_model = apps.get_model("reviews", "Label")
    event_model = apps.get_model("governance", "AuditEvent")
    current = {}  # case id -> its latest label, superseded when a later verdict ends the case
    # Which queue each decision was made in: its audit event says (from_queue; a queue's slug ends in its kind).
    decided_events = event_model.objects.filter(kind__in=["case.decided", "case.escalated", "case.audited"])
    from_queue = {
        payload.get("decision_id"): payload.get("from_queue") or ""
        for payload in decided_events.values_list("payload", flat=True).iterator(chunk_size=5000)
        if isinstance(payload, dict)
    }
    decisions = decision_model.objects.select_related("case").order_by("created_at", "id")
    for decision in decisions.iterator(chunk_size=2000):
        if label_model.objects.filter(decision_id=decision.pk).exists():
            continue
        final_word = from_queue.get(decision.pk, "").rsplit("-", 1)[-1] in FINAL_WORD_QUEUES
        facts = _facts(decision, decision.case.route, final_word)
        if facts is None and decision.action != "reject":
            continue
        earlier = current.pop(decision.case_id, None)
        if earlier is not None:
            label_model.objects.filter(pk=earlier).update(superseded=True)
        if facts is None:
            continue
        source, output = facts
        if not isinstance(output.get("label"), str):
            continue
        model_label = (decision.output_before or {}).get("label") if isinstance(decision.output_before, dict) else ""
        label = label_model.objects.create(
            case_id=decision.case_id,
            category_id=decision.case.category_id,
            decision_id=decision.pk,
            source=source,
            label=output["label"][:200],
            output=output,
            model_label=str(model_label or "")[:200],
            reviewer_id=decision.actor_id,
            reason_code=decision.reason_code,
            model_version=decision.model_version,
            policy_version=decision.policy_version,
            certified=False,
            passed_gate=False,
            created_at=decision.created_at,
        )
        current[decision.case_id] = label.pk


class Migration(migrations.Migration):
    dependencies = [("reviews", "0006_labels_and_certifications"), ("governance", "0009_audit_anchor_kind")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
