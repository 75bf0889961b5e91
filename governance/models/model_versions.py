"""Model versions: which model makes a category's predictions, and where it stands in its rollout."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.choices import ModelStatus
from governance.models.categories import Category, InCategoryQuerySet


class ModelVersionQuerySet(InCategoryQuerySet["ModelVersion"]):
    """Model versions: visible with their category."""


class ModelVersion(models.Model):
    """A version of a model that makes a category's predictions, and where it stands in its rollout."""

    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="model_versions")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.REGISTERED)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, help_text="Deployment notes.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation metrics.")
    # A built-in model's trained classifier, serialized by skops (governance.predictor loads it), and the SHA-256
    # of those bytes, checked before every load so a changed artifact is refused rather than run.
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # The artifact never changes after registration; copying it into every history row (each status change)
    # would only multiply its size.
    history = HistoricalRecords(excluded_fields=["artifact"])
    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["category__slug", "name", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "name", "version"], name="%(app_label)s_%(class)s_unique_per_category"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ModelStatus.values), name="%(app_label)s_%(class)s_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"
