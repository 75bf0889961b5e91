from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    APPROVE = "approve", "Approve"
    CORRECT = "correct", "Correct"
    REJECT = "reject", "Reject"
    ESCALATE = "escalate", "Escalate"


class ReasonCode(models.TextChoices):
    POLICY_LEGAL = "policy_legal", "Policy or legal"
    NEEDS_EXPERT = "needs_expert", "Needs a domain expert"
    HIGH_RISK = "high_risk", "High risk"
    WRONG_LABEL = "wrong_label", "Wrong label"
    BAD_DRAFT = "bad_draft", "Bad draft"
    OTHER = "other", "Other"
