"""Model versions: registered here, moved along their rollout only by the promotion service, with a reason.

What a version's page shows of the layers above (a built-in version's held-out figures beside the active one's, its
live shadow agreement, a button that starts a training) is registered from their admin modules
(`register_model_version_panel`, `register_model_version_tool`): governance never names them.
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

from governance.admin_mixins import (
    HitlModelAdmin,
    ReasonForm,
    VisibleCategoryFilter,
    VisibleToAdminMixin,
    acting_user,
    confirm_with_reason,
)
from governance.choices import MODEL_STATUS_ORDER, ModelStatus
from governance.models import Category, ModelVersion
from governance.services import promote_model_version, register_model_version

# A read-only row of a version's page, filled in by a higher layer: an `@admin.display` function of the version
# returning HTML (its __name__ names the row; its description labels it).
ModelVersionPanel = Callable[[ModelVersion], str]
# A link above a version's page, from a higher layer: (label, url) for this user and version, or None.
ModelVersionTool = Callable[[HttpRequest, ModelVersion], "tuple[str, str] | None"]

_PANELS: dict[str, ModelVersionPanel] = {}
_TOOLS: dict[str, ModelVersionTool] = {}


def register_model_version_panel(panel: ModelVersionPanel) -> None:
    """Show `panel` on every model version's page, after its own fields; registering a name again replaces it."""
    _PANELS[panel.__name__] = panel


def register_model_version_tool(tool: ModelVersionTool) -> None:
    """Offer `tool`'s link above every model version's page it returns one for."""
    _TOOLS[tool.__name__] = tool


class ModelVersionAdminForm(forms.ModelForm[ModelVersion]):
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), help_text="Why it is registered."
    )

    class Meta:
        model = ModelVersion
        fields = ("category", "name", "version", "notes", "metrics")


class PromoteForm(ReasonForm):
    status = forms.ChoiceField(choices=ModelStatus.choices, help_text="Any status may go to retired (a rollback).")
    field_order = ("status", "reason")


@admin.register(ModelVersion)
class ModelVersionAdmin(VisibleToAdminMixin, HitlModelAdmin[ModelVersion]):
    """Model versions are registered here and promoted by an action with a reason, never by editing the status."""

    grants_open_admin = False
    read_only_change_form = True
    form = ModelVersionAdminForm
    list_display = ("label", "category", "status", "approved_by", "approved_at", "created_at")
    list_filter = (VisibleCategoryFilter, "status")
    list_select_related = ("category", "approved_by")
    search_fields = ("name", "version")
    actions = ("promote_selected",)
    add_fields = ("category", "name", "version", "notes", "metrics", "reason")
    change_fields = ("category", "name", "version", "status", "approved_by", "approved_at", "notes", "metrics")

    def get_fields(self, request: HttpRequest, obj: ModelVersion | None = None) -> tuple[Any, ...]:
        return self.add_fields if obj is None else (*self.change_fields, "created_at", *_PANELS.values())

    def get_readonly_fields(self, request: HttpRequest, obj: ModelVersion | None = None) -> tuple[Any, ...]:
        return () if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            kwargs["queryset"] = Category.objects.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ModelVersion, form: ModelVersionAdminForm, change: bool) -> None:
        created = register_model_version(
            category=obj.category,
            name=obj.name,
            version=obj.version,
            user=acting_user(request),
            reason=form.cleaned_data["reason"],
            notes=obj.notes,
            metrics=obj.metrics,
        )
        obj.pk = created.pk
        obj._state.adding = False

    def get_object_tools(self, request: HttpRequest, obj: ModelVersion) -> list[tuple[str, str]]:
        tools = []
        if self.has_change_permission(request, obj):
            tools.append(("Promote or retire", reverse("admin:governance_modelversion_promote", args=[obj.pk])))
        for tool in _TOOLS.values():
            link = tool(request, obj)
            if link is not None:
                tools.append(link)
        return tools

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/promote/",
                self.admin_site.admin_view(self.promote_view),
                name="governance_modelversion_promote",
            ),
            *super().get_urls(),
        ]

    def _promote(
        self, request: HttpRequest, versions: list[ModelVersion], action: str | None = None
    ) -> HttpResponse | None:
        def apply(version: ModelVersion, data: dict[str, Any]) -> None:
            promote_model_version(
                model_version=version, status=data["status"], user=acting_user(request), reason=data["reason"]
            )

        initial = None
        if len(versions) == 1 and versions[0].status in MODEL_STATUS_ORDER[:-2]:
            initial = {"status": MODEL_STATUS_ORDER[MODEL_STATUS_ORDER.index(ModelStatus(versions[0].status)) + 1]}
        return confirm_with_reason(
            self,
            request,
            versions,
            title="Change the status of model versions",
            submit_label="Status changed",
            apply=apply,
            form_class=PromoteForm,
            initial=initial,
            action=action,
        )

    @admin.action(description="Promote or retire the selected versions (asks why)", permissions=["change"])
    def promote_selected(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        return self._promote(request, list(queryset), action="promote_selected")

    def promote_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        version = self.get_object(request, unquote(object_id))
        if not self.has_change_permission(request, version):
            raise PermissionDenied
        response = self._promote(request, [version])
        return response or HttpResponseRedirect(reverse("admin:governance_modelversion_change", args=[version.pk]))
