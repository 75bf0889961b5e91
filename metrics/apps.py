from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Reads everything: KPIs, alert rules, the pause trigger, drift and dashboards."""

    name = "metrics"
    verbose_name = "Metrics"
