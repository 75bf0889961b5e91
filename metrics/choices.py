from __future__ import annotations

from django.db import models


class AlertKind(models.TextChoices):
    OVERRIDE_RATE = "override_rate", "Override rate over the threshold"
    ESCALATION_SPIKE = "escalation_spike", "Escalation rate up by more than the threshold (relative)"
    RESOLUTION_TIME = "resolution_time", "Human resolution time multiplied by the threshold"
    CONFIDENCE_DRIFT = "confidence_drift", "Confidence drift (PSI at or above the threshold)"
    RUBBER_STAMPING = "rubber_stamping", "A reviewer approves nearly everything, too fast"


class AlertAction(models.TextChoices):
    NOTIFY = "notify", "Notify model stewards"
    PAUSE = "pause", "Pause the category (and notify)"
