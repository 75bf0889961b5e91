from __future__ import annotations

import django_filters

from governance.api.filters import IdFilter
from governance.choices import ModelStatus
from governance.models import AuditEvent, ModelVersion


class ModelVersionFilterSet(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug")
    category_id = IdFilter(field_name="category_id")
    status = django_filters.MultipleChoiceFilter(choices=ModelStatus.choices)

    class Meta:
        model = ModelVersion
        fields = ["category", "category_id", "status", "name"]


class AuditEventFilterSet(django_filters.FilterSet):
    case = IdFilter(field_name="case_id", help_text="Only this case's events.")
    category = django_filters.CharFilter(field_name="category_slug", help_text="Only this category's events (slug).")
    kind = django_filters.CharFilter(help_text="Only events of this kind, e.g. case.routed.")

    class Meta:
        model = AuditEvent
        fields = ["case", "category", "kind"]
