from django.apps import AppConfig


class CasesConfig(AppConfig):
    """Intake, the pure routing function, queues and SLAs."""

    name = "cases"
    verbose_name = "Cases"

    def ready(self) -> None:
        from cases import receivers  # noqa: F401  (connects the answer to governance.signals.category_created)
