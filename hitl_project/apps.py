from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


def _ensure_ground_rows(sender: AppConfig, **kwargs: Any) -> None:
    """After migrate or flush: the role groups exist (idempotent). Audit chain heads are made on first use."""
    from hitl_project.roles import ensure_roles

    ensure_roles()


class HitlAdminConfig(admin_apps.AdminConfig):
    """Django's admin app (label "admin", autodiscover), with HITL Desk's site as the default `admin.site`."""

    # Not the config Django picks for "hitl_project" itself: that is HitlProjectConfig below.
    default = False
    default_site = "hitl_project.admin_site.HitlAdminSite"


class HitlProjectConfig(AppConfig):
    """The wiring: URLs, settings, and the commands that span every layer (demo seed, demo server, jobs)."""

    name = "hitl_project"
    verbose_name = "HITL Desk"

    def ready(self) -> None:
        # post_migrate is sent once per app that has models; run after the last one, when every app's
        # permissions exist.
        last_app_with_models = [config for config in apps.get_app_configs() if config.models_module][-1]
        post_migrate.connect(
            _ensure_ground_rows, sender=last_app_with_models, dispatch_uid="hitl_project.ensure_ground_rows"
        )
