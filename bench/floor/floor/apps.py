from __future__ import annotations

from django.apps import AppConfig


class FloorConfig(AppConfig):
    name = "floor"
    verbose_name = "Intake floor"
