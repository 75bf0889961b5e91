from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """The ground layer: categories, policies, model versions, roles and the audit trail."""

    name = "governance"
    verbose_name = "Governance"
