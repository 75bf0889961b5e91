"""Alert rules (editable thresholds per category) and the alerts they fired (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance.admin_mixins import VisibleCategoryFilter, VisibleToAdminMixin
from governance.models import Category
from governance.permissions import has_perm_on
from metrics.models import Alert, AlertRule


class _CategoryScoped(VisibleToAdminMixin):
    grants_open_admin = False

    def restrict(self, queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
        return queryset.filter(category__in=Category.objects.visible_to(user))


@admin.register(AlertRule)
class AlertRuleAdmin(_CategoryScoped, admin.ModelAdmin):
    """Thresholds are tuned per category by whoever may change the category (product owners)."""

    list_display = ("category", "kind", "threshold", "window_hours", "min_count", "action", "active")
    list_editable = ("threshold", "window_hours", "min_count", "action", "active")
    list_filter = (VisibleCategoryFilter, "kind", "action", "active")
    list_select_related = ("category",)
    readonly_fields = ("category", "kind")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # every category gets one rule of each kind

    def has_delete_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        if obj is None:
            return bool(request.user.is_superuser or request.user.has_perm("metrics.change_alertrule"))
        return has_perm_on(request.user, "governance.change_category", obj.category)


@admin.register(Alert)
class AlertAdmin(_CategoryScoped, admin.ModelAdmin):
    list_display = ("fired_at", "category", "rule", "subject", "value", "threshold", "incident")
    list_filter = (VisibleCategoryFilter, "rule__kind")
    list_select_related = ("category", "rule", "incident")
    readonly_fields = ("rule", "category", "subject", "fired_at", "value", "threshold", "details", "incident")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False
