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
    # The SHA-256 of a built-in model's artifact (its bytes are a ModelArtifact row of their own), checked before
    # every load so a changed artifact is refused rather than run; kept here, in the version's history.
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
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


class ModelArtifact(models.Model):
    """A built-in model's trained classifier, serialized by skops (governance.predictor loads it).

    A table of its own: every case reads its model version (`select_related`), and a model of several hundred
    kilobytes must not travel with each of them. Written once, at registration."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="artifact")
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"artifact of {self.model_version_id}"
