"""Labels and the people whose labels count: every human verdict becomes a training example (DESIGN.md, Feedback
loop), and data curators certify the reviewers whose labels pass the quality gate.

`record_label` runs inside the decision's transaction (`reviews.services.decisions.decide` calls it), so a label
exists exactly when its decision does. The rule of which verdict labels what is `label_from`, a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from cases.choices import Route
from cases.models import Case
from governance.history import require_reason, save_with_reason
from governance.models import Category
from governance.permissions import is_data_curator
from reviews.choices import Action, LabelSource
from reviews.models import Decision, Label, ReviewerCertification


@dataclass(frozen=True)
class LabelFacts:
    """What a verdict says the right answer is: the output and its label, and which kind of verdict said it."""

    source: str
    output: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.output["label"])


def label_from(*, action: str, output_after: Any, model_output: Any, route: str, final_word: bool) -> LabelFacts | None:
    """The label a verdict makes, or None: a reject says what is wrong, not what is right, and an escalation
    decides nothing yet. An approve or a correct in an escalation or expert queue is the final word; in shadow it
    is the reviewer's own answer."""
    if action == Action.CONFIRM:
        return LabelFacts(LabelSource.AUDIT_CONFIRM, dict(model_output))
    if action == Action.FLAG:
        return LabelFacts(LabelSource.AUDIT_FLAG, dict(output_after))
    if action not in (Action.APPROVE, Action.CORRECT) or not isinstance(output_after, dict):
        return None
    if route == Route.SHADOW:
        return LabelFacts(LabelSource.SHADOW, dict(output_after))
    if final_word:
        return LabelFacts(LabelSource.ESCALATION, dict(output_after))
    return LabelFacts(LabelSource.APPROVE if action == Action.APPROVE else LabelSource.CORRECT, dict(output_after))


def require_output(output: Any, action: str) -> dict[str, Any]:
    """The output a verdict gives (an object with a non-empty `label`), or a refusal naming `output`."""
    if not isinstance(output, dict) or not isinstance(output.get("label"), str) or not output["label"].strip():
        raise ValidationError({"output": f"To {action}, send the output as an object with a non-empty `label`."})
    return output


def is_certified(reviewer: User | None, category: Category) -> bool:
    """Is the reviewer certified for the category right now?"""
    if reviewer is None:
        return False
    return ReviewerCertification.objects.filter(reviewer=reviewer, category=category, active=True).exists()


def record_label(*, decision: Decision, case: Case, final_word: bool) -> Label | None:
    """The label of this decision, if it makes one; either way a final verdict supersedes the case's earlier
    labels (the last human word wins; they are kept, marked)."""
    facts = label_from(
        action=decision.action,
        output_after=decision.output_after,
        model_output=decision.output_before,
        route=case.route,
        final_word=final_word,
    )
    ends_the_case = facts is not None or decision.action == Action.REJECT
    if ends_the_case:
        Label.objects.filter(case=case, superseded=False).update(superseded=True)
    if facts is None:
        return None
    certified = is_certified(decision.actor, case.category)
    model_label = decision.output_before.get("label") if isinstance(decision.output_before, dict) else None
    return Label.objects.create(
        case=case,
        category=case.category,
        decision=decision,
        source=facts.source,
        label=facts.label[:200],
        output=facts.output,
        model_label=str(model_label or "")[:200],
        reviewer=decision.actor,
        reason_code=decision.reason_code,
        model_version=decision.model_version,
        policy_version=decision.policy_version,
        certified=certified,
        passed_gate=certified,
        created_at=decision.created_at,
    )


def _require_curator(user: User) -> None:
    if not is_data_curator(user):
        raise PermissionDenied("Only data curators and superusers certify reviewers.")


@transaction.atomic
def certify(*, curator: User, reviewer: User, category: Category, reason: str) -> ReviewerCertification:
    """Certify `reviewer` for `category` from now on (labels they make from now pass the gate)."""
    _require_curator(curator)
    reason = require_reason(reason)
    if not reviewer.is_active:
        raise ValidationError({"reviewer": f"{reviewer.get_username()} is not an active user."})
    certification = (
        ReviewerCertification.objects.select_for_update().filter(reviewer=reviewer, category=category).first()
    )
    if certification is not None and certification.active:
        raise ValidationError({"reviewer": f"{reviewer.get_username()} is already certified for {category.slug}."})
    now = timezone.now()
    if certification is None:
        certification = ReviewerCertification(reviewer=reviewer, category=category, certified_at=now, reason=reason)
    else:
        certification.active, certification.certified_at, certification.revoked_at = True, now, None
        certification.reason = reason
    save_with_reason(certification, user=curator, reason=f"Certified: {reason}")
    return certification


@transaction.atomic
def revoke(*, curator: User, reviewer: User, category: Category, reason: str) -> ReviewerCertification:
    """End `reviewer`'s certification for `category` (labels they made while certified keep their flag)."""
    _require_curator(curator)
    reason = require_reason(reason)
    certification = (
        ReviewerCertification.objects.select_for_update().filter(reviewer=reviewer, category=category).first()
    )
    if certification is None or not certification.active:
        raise ValidationError({"reviewer": f"{reviewer.get_username()} is not certified for {category.slug}."})
    certification.active, certification.revoked_at, certification.reason = False, timezone.now(), reason
    save_with_reason(certification, user=curator, reason=f"Revoked: {reason}")
    return certification
