"""The audit log: read-only for everyone, narrowed to what the user may see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from governance.admin_mixins import VisibleCategoryFilter, VisibleToAdminMixin
from governance.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class AuditCategoryFilter(VisibleCategoryFilter):
    lookup = "category_slug"
    by_slug = True


@admin.register(AuditEvent)
class AuditEventAdmin(VisibleToAdminMixin, admin.ModelAdmin[AuditEvent]):
    """The audit log, read-only for everyone: the database refuses changes anyway, the admin never offers them."""

    grants_open_admin = False
    list_display = ("seq", "created_at", "kind", "actor_username", "category_slug", "case_id", "short_hash")
    list_filter = ("kind", AuditCategoryFilter)
    ordering = ("-seq",)
    show_full_result_count = False
    fields = AuditEvent.STORED_FIELDS
    readonly_fields = fields

    def restrict(self, queryset: QuerySet[Any], user: User | AnonymousUser) -> QuerySet[Any]:
        return queryset.filter(pk__in=AuditEvent.objects.visible_to(user).values("pk"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    @admin.display(description="hash")
    def short_hash(self, obj: AuditEvent) -> str:
        return obj.hash[:12]
