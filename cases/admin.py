"""The cases admin: queues (whose grants say who works them) and cases, read-only with their routing and audit trail.

A list page costs a fixed number of queries whatever the number of rows (`list_select_related`, filters whose
choices come from the small category and queue tables), and shows only what `visible_to(user)` allows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from cases.models import Case, Queue
from governance.admin_mixins import GuardedHitlModelAdmin, HitlModelAdmin, VisibleCategoryFilter, VisibleToAdminMixin
from governance.models import AuditEvent

if TYPE_CHECKING:
    from django.utils.safestring import SafeString


class VisibleQueueFilter(admin.SimpleListFilter):
    """Filter by queue, offering only the queues the user may see."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        queues = Queue.objects.visible_to(request.user).order_by("slug").only("pk", "slug")
        return [(str(queue.pk), queue.slug) for queue in queues]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(queue_id=value) if value else queryset


@admin.register(Queue)
class QueueAdmin(VisibleToAdminMixin, GuardedHitlModelAdmin):
    """Queues are created with their category; here they are listed, and their grants (`cases.work_queue`) managed."""

    read_only_change_form = True
    list_display = ("slug", "category", "kind", "sla", "next_queue", "allow_batch")
    list_filter = (VisibleCategoryFilter, "kind", "allow_batch")
    list_select_related = ("category", "next_queue")
    search_fields = ("slug", "name")
    fields = ("slug", "name", "category", "kind", "sla", "next_queue", "allow_batch", "review_floor_seconds")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        # Nothing on a queue is edited here; "change" is what opens guardian's page for who may work it.
        return self.can_manage_object_permissions(request)

    def has_delete_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(VisibleToAdminMixin, HitlModelAdmin):
    """Cases, read-only for everyone: they change through intake and review decisions, never by hand."""

    list_display = (
        "id",
        "external_id",
        "category",
        "status",
        "route",
        "queue",
        "priority",
        "confidence",
        "model_version",
        "audit_sampled",
        "due_at",
        "created_at",
    )
    list_filter = (VisibleCategoryFilter, "status", "route", VisibleQueueFilter, "priority", "audit_sampled")
    list_select_related = ("category", "queue", "model_version")
    search_fields = ("external_id__exact", "customer_ref__exact")
    search_help_text = "An exact external id or customer reference."
    raw_id_fields = ("category", "model_version", "queue", "claimed_by")
    # Counting every case of a big table on each page view costs more than the page; the filtered count is enough.
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {"fields": ("external_id", "category", "status", "priority", "customer_ref", "created_at", "decided_at")},
        ),
        (
            "Model output",
            {"fields": ("model_version", "confidence", "output", "input", "rules_fired", "value", "segment")},
        ),
        (
            "Routing",
            {
                "fields": (
                    "route",
                    "route_reasons_list",
                    "policy_version",
                    "audit_sampled",
                    "audit_draw",
                    "queue",
                    "due_at",
                )
            },
        ),
        ("Review", {"fields": ("claimed_by", "claimed_until", "final_output")}),
        ("Audit trail", {"fields": ("audit_events",)}),
    )
    readonly_fields = (
        "external_id",
        "category",
        "status",
        "priority",
        "customer_ref",
        "created_at",
        "decided_at",
        "model_version",
        "confidence",
        "output",
        "input",
        "rules_fired",
        "value",
        "segment",
        "route",
        "route_reasons_list",
        "policy_version",
        "audit_sampled",
        "audit_draw",
        "queue",
        "due_at",
        "claimed_by",
        "claimed_until",
        "final_output",
        "audit_events",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    @admin.display(description="route reasons")
    def route_reasons_list(self, obj: Case) -> SafeString:
        return format_html("<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((r,) for r in obj.route_reasons)))

    @admin.display(description="audit events")
    def audit_events(self, obj: Case) -> SafeString:
        events = AuditEvent.objects.filter(case_id=obj.pk).order_by("seq")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            (
                (
                    event.seq,
                    event.created_at.isoformat(timespec="seconds"),
                    event.kind,
                    event.actor_username,
                    json.dumps(event.payload, sort_keys=True),
                    event.hash[:12],
                )
                for event in events
            ),
        )
        if not rows:
            return format_html("<p>{}</p>", "No audit events.")
        return format_html(
            "<table><thead><tr><th>seq</th><th>time</th><th>kind</th><th>actor</th><th>payload</th><th>hash</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )
