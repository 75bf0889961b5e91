from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Reads everything: KPIs, alert rules, the pause trigger, drift and dashboards."""

    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from metrics import receivers  # noqa: F401  (default alert rules for every new category)
