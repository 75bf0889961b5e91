from __future__ import annotations

from django.apps import AppConfig


class CasesConfig(AppConfig):
    """Intake, the pure routing function, queues and SLAs."""

    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        from cases import receivers  # noqa: F401  (connects the answer to governance.signals.category_created)
        from cases.api.serializers import CATEGORY_QUEUES
        from cases.models import Case, Queue
        from governance import permissions
        from governance.api.serializers import CATEGORY_FIELDS

        # Governance's visibility, widened by this layer's grants (governance never names them): whoever works a
        # queue sees its category, and sees the audit events of the cases they may see.
        permissions.register_visible_category_ids("worked queues", Queue.objects.category_ids_worked_by)
        permissions.register_visible_case_ids("cases", lambda user: Case.objects.visible_to(user).values("pk"))
        # A category's representation in the API lists its queues.
        CATEGORY_FIELDS.register(CATEGORY_QUEUES)
