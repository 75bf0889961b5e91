from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    APPROVE = "approve", "Approve"
    CORRECT = "correct", "Correct"
    REJECT = "reject", "Reject"
    ESCALATE = "escalate", "Escalate"
    # An audit of an auto-approved case: it was right (confirm) or wrong (flag, with the correct output).
    CONFIRM = "confirm", "Confirm (audit)"
    FLAG = "flag", "Flag (audit)"


REVIEW_ACTIONS = frozenset({Action.APPROVE, Action.CORRECT, Action.REJECT, Action.ESCALATE})
AUDIT_ACTIONS = frozenset({Action.CONFIRM, Action.FLAG})
# Decisions that judge a model output, and those that judge it wrong: an override (corrected, rejected, or flagged
# by an audit). Escalations judge nothing yet. The pause rule, the override-rate alert and the KPIs all count these.
VERDICT_ACTIONS = frozenset({Action.APPROVE, Action.CORRECT, Action.REJECT, Action.CONFIRM, Action.FLAG})
OVERRIDE_ACTIONS = frozenset({Action.CORRECT, Action.REJECT, Action.FLAG})
# Actions that need a reason code.
ACTIONS_NEEDING_REASON = frozenset({Action.REJECT, Action.ESCALATE, Action.FLAG})


class ReasonCode(models.TextChoices):
    POLICY_LEGAL = "policy_legal", "Policy or legal"
    NEEDS_EXPERT = "needs_expert", "Needs a domain expert"
    HIGH_RISK = "high_risk", "High risk"
    WRONG_LABEL = "wrong_label", "Wrong label"
    BAD_DRAFT = "bad_draft", "Bad draft"
    OTHER = "other", "Other"


class LabelSource(models.TextChoices):
    """Which human verdict made a label (DESIGN.md, Feedback loop)."""

    APPROVE = "approve", "Approved as proposed"
    CORRECT = "correct", "Corrected"
    SHADOW = "shadow", "A blind (shadow) review's own answer"
    AUDIT_CONFIRM = "audit_confirm", "Confirmed by an audit"
    AUDIT_FLAG = "audit_flag", "Flagged by an audit, with the corrected output"
    ESCALATION = "escalation", "The final word of an escalation or expert queue"
    DOUBLE_REVIEW = "double_review", "A second, blind review's own answer"
    ADJUDICATION = "adjudication", "The adjudicated answer of a double-review disagreement"


# Labels that come from a double review's task, not from a decision on the case (the case was already final).
TASK_LABEL_SOURCES = frozenset({LabelSource.DOUBLE_REVIEW, LabelSource.ADJUDICATION})


class DoubleReviewStatus(models.TextChoices):
    """Where a double review stands: waiting for the second reviewer, waiting for an adjudicator after a
    disagreement, or done (the pair agreed, or the disagreement was adjudicated)."""

    SECOND_REVIEW = "second_review", "Waiting for the second review"
    ADJUDICATION = "adjudication", "Disagreement: waiting for adjudication"
    AGREED = "agreed", "Agreed"
    ADJUDICATED = "adjudicated", "Adjudicated"


# A double review whose second verdict is in: the pairs agreement (Cohen's kappa) counts.
DOUBLE_REVIEW_PAIRED = frozenset(
    {DoubleReviewStatus.ADJUDICATION, DoubleReviewStatus.AGREED, DoubleReviewStatus.ADJUDICATED}
)
# A double review someone still has to work on.
DOUBLE_REVIEW_OPEN = frozenset({DoubleReviewStatus.SECOND_REVIEW, DoubleReviewStatus.ADJUDICATION})
