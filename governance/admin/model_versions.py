"""Model versions: registered here, moved along their rollout only by the promotion service, with a reason.

What a version's page shows of the layers above (a built-in version's held-out figures beside the active one's, its
live shadow agreement, a button that starts a training) is registered from their admin modules
(`register_model_version_panel`, `register_model_version_tool`), and so are the live figures its promote form shows
beside its evaluation (`register_promotion_panel`): governance never names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

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
from governance.services.model_versions import check_transition, skipped_stages

# A read-only row of a version's page, filled in by a higher layer: an `@admin.display` function of the version
# returning HTML (its __name__ names the row; its description labels it).
ModelVersionPanel = Callable[[ModelVersion], str]
# A link above a version's page, from a higher layer: (label, url) for this user and version, or None.
ModelVersionTool = Callable[[HttpRequest, ModelVersion], "tuple[str, str] | None"]

_PANELS: dict[str, ModelVersionPanel] = {}
_TOOLS: dict[str, ModelVersionTool] = {}
_PROMOTION_PANELS: dict[str, ModelVersionPanel] = {}


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
    """The status to go to and why; a step that skips shadow or canary needs `skip_confirmed` as well."""

    status = forms.ChoiceField(choices=ModelStatus.choices, help_text="Any status may go to retired (a rollback).")
    skip_confirmed = forms.BooleanField(
        required=False,
        label="Skip them",
        help_text="Needed only for a step that leaves out shadow or canary: the version then acts without having been "
        "compared with people (shadow) or tried on a few cases first (canary).",
    )
    field_order = ("status", "reason", "skip_confirmed")

    def __init__(self, *args: Any, versions: list[ModelVersion] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.versions = versions or []
        if self.versions:
            # Only the steps every selected version may take (the service's own rule), not every status there is.
            field = cast("forms.ChoiceField", self.fields["status"])
            field.choices = [
                (value, label)
                for value, label in ModelStatus.choices
                if all(_may_go(version.status, value) for version in self.versions)
            ]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        status = cleaned.get("status")
        if status and not cleaned.get("skip_confirmed"):
            warnings = [skip_warning(version, status) for version in self.versions]
            for warning in filter(None, warnings):
                self.add_error("skip_confirmed", f"{warning} Tick 'Skip them' to promote anyway.")
        return cleaned


def _may_go(current: str, target: str) -> bool:
    try:
        check_transition(current, target)
    except ValidationError:
        return False
    return True


def skip_warning(version: ModelVersion, status: str) -> str:
    """'x@1 would go from registered to active without shadow and canary.', or "" for a step that skips none."""
    skipped = skipped_stages(version.status, status)
    if not skipped:
        return ""
    return f"{version.label} would go from {version.status} to {status} without {' and '.join(skipped)}."


def _figure(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@admin.display(description="evaluation, beside the active version")
def evaluation_versus_active(version: ModelVersion) -> SafeString:
    """The version's evaluation figures (its `metrics`, numbers only) beside the active version's, key by key."""
    active = (
        ModelVersion.objects.filter(category_id=version.category_id, status=ModelStatus.ACTIVE)
        .exclude(pk=version.pk)
        .order_by("-created_at")
        .first()
    )
    ours, theirs = version.metrics or {}, (active.metrics or {}) if active is not None else {}
    keys = sorted(key for key in {*ours, *theirs} if _figure(ours.get(key)) != "-" or _figure(theirs.get(key)) != "-")
    if not keys:
        return format_html("<p>{}</p>", "Neither this version nor the active one has evaluation figures.")
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
        ((k, _figure(ours.get(k)), _figure(theirs.get(k))) for k in keys),
    )
    return format_html(
        '<table class="hitl-evidence"><thead><tr><th></th><th>{}</th><th>{}</th></tr></thead>{}</table>',
        version.label,
        f"{active.label} (active)" if active is not None else "no active version",
        rows,
    )


def register_promotion_panel(panel: ModelVersionPanel) -> None:
    """Show `panel` (e.g. live figures from the layers above) on the promote form of each version, after its
    evaluation figures; registering a name again replaces it."""
    _PROMOTION_PANELS[panel.__name__] = panel


def promotion_evidence(versions: list[ModelVersion]) -> SafeString:
    """What to decide a promotion on, per version: its evaluation beside the active one's, the panels registered
    from above (live figures), and which steps would skip shadow or canary."""
    blocks = []
    for version in versions:
        panels: list[tuple[str, str]] = [("Evaluation, beside the active version", evaluation_versus_active(version))]
        panels += [(str(getattr(p, "short_description", p.__name__)), p(version)) for p in _PROMOTION_PANELS.values()]
        skips = [
            f"to {status}: skips {' and '.join(skipped)}"
            for status in MODEL_STATUS_ORDER
            if (skipped := skipped_stages(version.status, status))
        ]
        warning = (
            format_html(
                '<ul class="messagelist"><li class="warning">From {}, {}.</li></ul>', version.status, "; ".join(skips)
            )
            if skips
            else ""
        )
        blocks.append(
            format_html(
                '<section class="module"><h2>{} ({})</h2>{}{}</section>',
                version.label,
                version.status,
                format_html_join("", "<h3>{}</h3>{}", panels),
                warning,
            )
        )
    return format_html_join("", "{}", ((block,) for block in blocks))


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
            form_kwargs={"versions": versions},
            details=promotion_evidence(versions),
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
