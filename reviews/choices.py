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
# Actions that need a reason code.
ACTIONS_NEEDING_REASON = frozenset({Action.REJECT, Action.ESCALATE, Action.FLAG})


class ReasonCode(models.TextChoices):
    POLICY_LEGAL = "policy_legal", "Policy or legal"
    NEEDS_EXPERT = "needs_expert", "Needs a domain expert"
    HIGH_RISK = "high_risk", "High risk"
    WRONG_LABEL = "wrong_label", "Wrong label"
    BAD_DRAFT = "bad_draft", "Bad draft"
    OTHER = "other", "Other"
