from __future__ import annotations

from typing import ClassVar

from django.db import models

PRIORITIES = [("normal", "Normal"), ("urgent", "Urgent")]  # cases.choices.Priority


class FloorCase(models.Model):
    """A submitted case as one plain row: the fields of a `POST /api/v1/cases/` body, and when it arrived. No
    routing, queue, history or audit: the least any intake must store."""

    category = models.SlugField(max_length=64, db_index=False)
    external_id = models.CharField(max_length=200)
    input = models.JSONField()
    output = models.JSONField()
    confidence = models.FloatField()
    model_version = models.CharField(max_length=201)
    rules_fired = models.JSONField(default=list)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    segment = models.JSONField(default=dict)
    priority = models.CharField(max_length=10, choices=PRIORITIES, default="normal")
    customer_ref = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    # Declared, not implied: mypy's django-stubs plugin reads the project's settings, where this app is not installed.
    objects: ClassVar[models.Manager[FloorCase]] = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "external_id"], name="%(app_label)s_%(class)s_unique_external_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.category}/{self.external_id}"
