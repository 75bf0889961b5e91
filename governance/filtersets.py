from __future__ import annotations

import django_filters

from governance.choices import ModelStatus
from governance.models import ModelVersion


class ModelVersionFilterSet(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug")
    category_id = django_filters.NumberFilter(field_name="category_id")
    status = django_filters.MultipleChoiceFilter(choices=ModelStatus.choices)

    class Meta:
        model = ModelVersion
        fields = ["category", "category_id", "status", "name"]
