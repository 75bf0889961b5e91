"""Incidents and the notices of the signed-in user.

An incident is opened here by hand (or by the pause rule and alerts) and moved forward with a note by the
`advance_incident` service; its timeline is read-only. Notices are each person's own list of what they were told.

What an incident touched in the layers above (the cases it affected, the alerts that opened it) is shown by
panels those layers register from their admin modules (`register_incident_panel`): governance never names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from governance.admin_mixins import VisibleCategoryFilter, VisibleToAdminMixin, acting_user, confirm_with_reason
from governance.choices import IncidentStage
from governance.models import Category, Incident, Notification
from governance.services.incidents import STAGE_ORDER, advance_incident, open_incident

# A read-only row of the incident page, filled in by a higher layer: an `@admin.display` function of the incident
# returning HTML (its __name__ names the row; its description labels it).
IncidentPanel = Callable[[Incident], str]

_INCIDENT_PANELS: dict[str, IncidentPanel] = {}


def register_incident_panel(panel: IncidentPanel) -> None:
    """Show `panel` on every incident's page, after the evidence, in the order the apps register (layer order).

    Called from a higher app's admin module; registering a panel of the same name again replaces it.
    """
    _INCIDENT_PANELS[panel.__name__] = panel


class OpenIncidentForm(forms.ModelForm[Incident]):
    class Meta:
        model = Incident
        fields = ("category", "title")


class AdvanceForm(forms.Form):
    stage = forms.ChoiceField(choices=IncidentStage.choices)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="What was done.")
    root_cause = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))
    remediation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))
    field_order = ("stage", "note", "root_cause", "remediation")


@admin.register(Incident)
class IncidentAdmin(VisibleToAdminMixin, admin.ModelAdmin[Incident]):
    """Incidents of the categories the user may see; opened by hand here, moved forward with a note."""

    grants_open_admin = False
    change_form_template = "admin/hitl/change_form.html"
    form = OpenIncidentForm
    list_display = ("__str__", "category", "stage", "trigger", "opened_at", "closed_at")
    list_filter = (VisibleCategoryFilter, "stage", "trigger")
    list_select_related = ("category",)
    fields_before_panels = ("category", "title", "stage", "trigger", "opened_by", "opened_at", "evidence")
    fields_after_panels = ("root_cause", "remediation", "closed_at", "timeline_table")

    def change_fields(self) -> tuple[Any, ...]:
        """Everything on an incident's page, read-only: its own fields, then the panels registered from above."""
        return (*self.fields_before_panels, *_INCIDENT_PANELS.values(), *self.fields_after_panels)

    def get_fields(self, request: HttpRequest, obj: Incident | None = None) -> tuple[Any, ...]:
        return ("category", "title") if obj is None else self.change_fields()

    def get_readonly_fields(self, request: HttpRequest, obj: Incident | None = None) -> tuple[Any, ...]:
        return () if obj is None else self.change_fields()

    def has_delete_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            kwargs["queryset"] = Category.objects.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        opened = open_incident(category=obj.category, title=obj.title, user=acting_user(request), trigger="manual")
        obj.pk = opened.pk
        obj._state.adding = False

    @admin.display(description="timeline")
    def timeline_table(self, obj: Incident) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M"),
                    e.get_stage_display(),
                    e.actor.get_username() if e.actor else "system",
                    e.note,
                )
                for e in obj.timeline.select_related("actor")
            ),
        )
        return format_html("<table><tr><th>when</th><th>stage</th><th>who</th><th>what</th></tr>{}</table>", rows)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/advance/",
                self.admin_site.admin_view(self.advance_view),
                name="governance_incident_advance",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,  # nothing on the page is saved: it moves forward by its tool
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # A tool above the form, like every other page's: the subtitle is text, and also goes into the <title>.
        obj = context.get("original")
        tools = []
        if obj is not None and obj.stage != IncidentStage.CLOSED:
            tools.append(("Move forward / add a note", reverse("admin:governance_incident_advance", args=[obj.pk])))
        context["object_tools"] = tools
        return super().render_change_form(request, context, *args, **kwargs)

    def advance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        incident = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, incident) or not request.user.has_perm("governance.change_incident"):
            raise PermissionDenied

        def apply(obj: Incident, data: dict[str, Any]) -> None:
            advance_incident(
                incident=obj,
                user=acting_user(request),
                stage=data["stage"],
                note=data["note"],
                root_cause=data["root_cause"] or None,
                remediation=data["remediation"] or None,
            )

        next_stage = STAGE_ORDER[min(STAGE_ORDER.index(incident.stage) + 1, len(STAGE_ORDER) - 1)]
        response = confirm_with_reason(
            self,
            request,
            [incident],
            title=f"Incident #{incident.pk}: move forward",
            submit_label="Incident updated",
            apply=apply,
            form_class=AdvanceForm,
            initial={"stage": next_stage, "root_cause": incident.root_cause, "remediation": incident.remediation},
        )
        return response or HttpResponseRedirect(reverse("admin:governance_incident_change", args=[incident.pk]))


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    """Each person's own notices (SLA warnings, pauses...): read-only, marked read from the list."""

    list_display = ("subject", "kind", "category_slug", "created_at", "is_read", "open_link")
    list_filter = ("kind", "category_slug")
    actions = ("mark_read",)
    readonly_fields = ("subject", "body", "link", "kind", "category_slug", "created_at", "read_at")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).filter(user_id=acting_user(request).pk)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return request.user.is_active and (obj is None or obj.user_id == request.user.pk)

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    @admin.display(boolean=True, description="read")
    def is_read(self, obj: Notification) -> bool:
        return obj.read_at is not None

    @admin.display(description="")
    def open_link(self, obj: Notification) -> str:
        return format_html('<a href="{}">open</a>', obj.link) if obj.link else ""

    @admin.action(description="Mark as read")
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        queryset.filter(read_at__isnull=True).update(read_at=timezone.now())
