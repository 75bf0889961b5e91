from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Reads everything: KPIs, alert rules, the pause trigger, drift and dashboards."""

    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from metrics import receivers  # noqa: F401  (default alert rules for every new category)
        from metrics.aggregates import register_sqlite_functions

        # Percentiles in SQL on the laptop default too (PostgreSQL has them built in).
        connection_created.connect(register_sqlite_functions, dispatch_uid="metrics.sqlite_percentile")
