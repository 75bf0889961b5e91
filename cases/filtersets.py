from __future__ import annotations

import django_filters

from cases.choices import CaseStatus, Priority, Route
from cases.models import Case, Queue
from governance.api.filters import IdFilter, IsoDateTimeFilter


class CaseFilterSet(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug")
    category_id = IdFilter(field_name="category_id")
    status = django_filters.MultipleChoiceFilter(choices=CaseStatus.choices)
    route = django_filters.MultipleChoiceFilter(choices=Route.choices)
    queue = django_filters.CharFilter(field_name="queue__slug")
    queue_id = IdFilter(field_name="queue_id")
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    audit_sampled = django_filters.BooleanFilter()

    class Meta:
        model = Case
        fields = ["external_id", "customer_ref"]


class QueueFilterSet(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug", help_text="Only this category's queues (slug).")

    class Meta:
        model = Queue
        fields = ["category"]
