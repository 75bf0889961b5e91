"""Categories and their versioned policy: created, re-versioned, paused and resumed through the services."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from governance.admin.fields import LinesField, MultipliersField
from governance.admin_mixins import (
    GuardedHitlModelAdmin,
    HitlModelAdmin,
    ReasonForm,
    VisibleToAdminMixin,
    acting_user,
    confirm_with_reason,
)
from governance.models import Category, Policy
from governance.models.categories import MAX_RETRAIN_EVERY_DAYS, default_audit_multipliers
from governance.permissions import can_change_category, can_pause_category, can_retrain
from governance.services import (
    POLICY_FIELDS,
    create_category,
    pause_category,
    resume_category,
    set_retrain_cadence,
    update_policy,
)

if TYPE_CHECKING:
    pass

# A category's own fields, set when it is created (no service changes them afterwards yet).
CATEGORY_FIELDS = (
    "slug",
    "name",
    "description",
    "pattern",
    "stage",
    "consequence",
    "pii_fields",
    "retention_days",
    "baseline_minutes_per_case",
    "retrain_every_days",
)
# The same on an existing category's page, read-only, with its list of PII fields in words rather than JSON.
SHOWN_CATEGORY_FIELDS = tuple("pii_field_names" if name == "pii_fields" else name for name in CATEGORY_FIELDS)
# Read-only on the page: "automation" reads a pause as a warning (a boolean field would show it as a green tick).
PAUSE_FIELDS = ("automation", "paused_at", "paused_by", "paused_reason", "pause_incident_link", "resumed_at")


def _policy_field(name: str) -> forms.Field:
    field = cast("models.Field[Any, Any]", Policy._meta.get_field(name)).formfield()
    assert field is not None, name
    return field


class CategoryAdminForm(forms.ModelForm[Category]):
    """A category with its policy: on creation, both; afterwards, the policy and the reason for changing it."""

    auto_threshold = _policy_field("auto_threshold")
    review_threshold = _policy_field("review_threshold")
    auto_share = _policy_field("auto_share")
    high_value_amount = _policy_field("high_value_amount")
    # Lists and the strata's multipliers one per line, not as JSON: an error names the line that is wrong.
    pii_fields = LinesField(
        entry_name="field name",
        help_text="Input field names that always hold personal data, one per line (e.g. email).",
    )
    sensitive_labels = LinesField(
        entry_name="label", help_text="Predicted labels that force full review, one per line."
    )
    sensitive_rules = LinesField(entry_name="rule", help_text="Fired rules that force full review, one per line.")
    audit_rate = _policy_field("audit_rate")
    audit_multipliers = MultipliersField(
        known=default_audit_multipliers(),
        help_text="How much more often each stratum is audited, one 'stratum = multiplier' per line; a stratum left "
        f"out counts once. Strata: {', '.join(default_audit_multipliers())}.",
    )
    double_review_rate = _policy_field("double_review_rate")
    pause_rejection_rate = _policy_field("pause_rejection_rate")
    pause_window_hours = _policy_field("pause_window_hours")
    pause_min_reviews = _policy_field("pause_min_reviews")
    batch_max = _policy_field("batch_max")
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the policy changes. Required for a change: it goes into the policy's history and the audit "
        "trail.",
    )

    class Meta:
        model = Category
        fields = CATEGORY_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy_changes: dict[str, Any] = {}
        if "retrain_every_days" in self.fields:
            # Left empty, the default cadence (monthly), as the API does when it is not sent.
            self.fields["retrain_every_days"].required = False
        if self.instance.pk is not None:
            policy = self.instance.policy
            for name in POLICY_FIELDS:
                self.initial[name] = getattr(policy, name)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        cleaned["reason"] = (cleaned.get("reason") or "").strip()
        if "retrain_every_days" in self.fields and cleaned.get("retrain_every_days") is None:
            cleaned["retrain_every_days"] = Category._meta.get_field("retrain_every_days").get_default()
        names = [name for name in POLICY_FIELDS if name in self.fields]
        if any(name in self.errors for name in names):
            return cleaned
        values = {name: cleaned.get(name) for name in names}
        if self.instance.pk is None:
            candidate = Policy(**values)
        else:
            current = self.instance.policy
            self.policy_changes = {name: value for name, value in values.items() if value != getattr(current, name)}
            if self.policy_changes and not cleaned["reason"]:
                self.add_error("reason", "A reason is required: say why the policy changes, for its history.")
            candidate = copy.copy(current)
            for name, value in self.policy_changes.items():
                setattr(candidate, name, value)
        # The model's own validation (thresholds in order, known audit strata...), before any service runs.
        try:
            candidate.full_clean(exclude=["category"], validate_unique=False)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class RetrainCadenceForm(ReasonForm):
    retrain_every_days = forms.IntegerField(
        min_value=0,
        max_value=MAX_RETRAIN_EVERY_DAYS,
        help_text="Retrain the built-in model this often, in days; 0 turns the cadence off.",
    )
    field_order = ("retrain_every_days", "reason")


@admin.register(Category)
class CategoryAdmin(VisibleToAdminMixin, GuardedHitlModelAdmin[Category]):
    form = CategoryAdminForm
    list_display = ("slug", "name", "pattern_name", "stage", "automation", "policy_link")
    list_filter = ("pattern", "stage", "paused")
    list_select_related = ("policy",)
    search_fields = ("slug", "name")
    actions = ("pause_selected", "resume_selected")

    def has_change_permission(self, request: HttpRequest, obj: Category | None = None) -> bool:
        return can_change_category(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Category | None = None) -> bool:
        return False

    def has_pause_permission(self, request: HttpRequest) -> bool:
        """Offers the pause and resume actions to whoever may pause one of the categories listed (each is checked
        again when it is applied)."""
        return any(can_pause_category(request.user, category) for category in self.get_queryset(request))

    def get_fieldsets(self, request: HttpRequest, obj: Category | None = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": CATEGORY_FIELDS}),
                ("Policy (version 1)", {"fields": POLICY_FIELDS}),
                (None, {"fields": ("reason",)}),
            ]
        fieldsets: list[tuple[str | None, Any]] = [
            (None, {"fields": SHOWN_CATEGORY_FIELDS}),
            ("Automation", {"fields": PAUSE_FIELDS}),
        ]
        if not self.has_change_permission(request, obj):
            return [*fieldsets, ("Policy", {"fields": ("policy_link", "policy_summary")})]
        return [
            *fieldsets,
            (
                "Policy",
                {
                    "fields": ("policy_link", *POLICY_FIELDS),
                    "description": "Saving a change makes a new policy version; cases already routed keep theirs.",
                },
            ),
            ("Why", {"fields": ("reason",)}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Category | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return (*SHOWN_CATEGORY_FIELDS, *PAUSE_FIELDS, "policy_link", "policy_summary")

    def get_prepopulated_fields(self, request: HttpRequest, obj: Category | None = None) -> dict[str, Sequence[str]]:
        return {"slug": ("name",)} if obj is None else {}

    @admin.display(description="pattern", ordering="pattern")
    def pattern_name(self, obj: Category) -> str:
        return obj.pattern

    @admin.display(description="automation", ordering="paused")
    def automation(self, obj: Category) -> str:
        """A pause is a warning, not a green tick: automation is off and every case waits for a person."""
        if not obj.paused:
            return "on"
        return format_html(
            '<img src="{}" alt="Warning"> <strong title="{}">paused</strong>',
            static("admin/img/icon-alert.svg"),
            obj.paused_reason,
        )

    @admin.display(description="PII fields")
    def pii_field_names(self, obj: Category) -> str:
        """Input fields that always hold personal data, redacted for whoever lacks `cases.view_pii`."""
        return _plain(obj.pii_fields)

    @admin.display(description="incident of the pause")
    def pause_incident_link(self, obj: Category) -> str:
        """The incident the current pause opened, where the resume will be written."""
        if obj.pause_incident_id is None:
            return "-"
        url = reverse("admin:governance_incident_change", args=[obj.pause_incident_id])
        return format_html('<a href="{}">#{}</a>', url, obj.pause_incident_id)

    @admin.display(description="policy", ordering="policy__version")
    def policy_link(self, obj: Category) -> str:
        policy = obj.policy
        url = reverse("admin:governance_policy_history", args=[policy.pk])
        return format_html('<a href="{}" title="Policy history">v{}</a>', url, policy.version)

    @admin.display(description="current policy")
    def policy_summary(self, obj: Category) -> str:
        policy = obj.policy
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((name, _plain(getattr(policy, name))) for name in POLICY_FIELDS)
        )
        return format_html("<table>{}</table>", rows)

    def save_model(self, request: HttpRequest, obj: Category, form: CategoryAdminForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            if not form.policy_changes:
                self.message_user(request, "The policy did not change; no new version.", messages.INFO)
                return
            try:
                policy = update_policy(
                    category=obj, user=acting_user(request), changes=form.policy_changes, reason=data["reason"]
                )
            except ValidationError as exc:  # a concurrent change since the form was checked
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return
            self.message_user(request, f"The policy of {obj} is now version {policy.version}.", messages.SUCCESS)
            return
        category = create_category(
            user=acting_user(request),
            policy={name: data[name] for name in POLICY_FIELDS},
            reason=data["reason"] or "Category created",
            **{name: data[name] for name in CATEGORY_FIELDS},
        )
        obj.pk = category.pk
        obj._state.adding = False

    def get_object_tools(self, request: HttpRequest, obj: Category) -> list[tuple[str, str]]:
        tools = [("Policy history", reverse("admin:governance_policy_history", args=[obj.policy.pk]))]
        if can_retrain(request.user, obj):
            tools.append(("Retraining cadence", reverse("admin:governance_category_retraining", args=[obj.pk])))
        if can_pause_category(request.user, obj):
            verb = "resume" if obj.paused else "pause"
            tools.insert(0, (f"{verb.title()} automation", reverse(f"admin:governance_category_{verb}", args=[obj.pk])))
        return tools

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/pause/",
                self.admin_site.admin_view(self.pause_view),
                name="governance_category_pause",
            ),
            path(
                "<path:object_id>/resume/",
                self.admin_site.admin_view(self.resume_view),
                name="governance_category_resume",
            ),
            path(
                "<path:object_id>/retraining/",
                self.admin_site.admin_view(self.retraining_view),
                name="governance_category_retraining",
            ),
            *super().get_urls(),
        ]

    def _pause_or_resume(
        self, request: HttpRequest, categories: list[Category], *, pause: bool, action: str | None = None
    ) -> HttpResponse | None:
        service = pause_category if pause else resume_category

        def apply(category: Category, data: dict[str, Any]) -> None:
            if not can_pause_category(request.user, category):
                raise PermissionDenied("you may not pause or resume this category.")
            service(category=category, user=acting_user(request), reason=data["reason"])

        if pause:
            title, label = "Pause automation: every case goes to a human first", "Paused"
        else:
            title, label = "Resume automation", "Resumed"
        return confirm_with_reason(
            self, request, categories, title=title, submit_label=label, apply=apply, action=action
        )

    @admin.action(description="Pause automation of the selected categories (asks why)", permissions=["pause"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Category]) -> HttpResponse | None:
        return self._pause_or_resume(request, list(queryset), pause=True, action="pause_selected")

    @admin.action(description="Resume automation of the selected categories (asks why)", permissions=["pause"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Category]) -> HttpResponse | None:
        return self._pause_or_resume(request, list(queryset), pause=False, action="resume_selected")

    def _tool_view(self, request: HttpRequest, object_id: str, *, pause: bool) -> HttpResponse:
        category = self.get_object(request, unquote(object_id))
        if category is None or not can_pause_category(request.user, category):
            raise PermissionDenied
        response = self._pause_or_resume(request, [category], pause=pause)
        return response or HttpResponseRedirect(reverse("admin:governance_category_change", args=[category.pk]))

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._tool_view(request, object_id, pause=True)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._tool_view(request, object_id, pause=False)

    def retraining_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        category = self.get_object(request, unquote(object_id))
        if category is None or not can_retrain(request.user, category):
            raise PermissionDenied

        def apply(obj: Category, data: dict[str, Any]) -> None:
            set_retrain_cadence(
                category=obj,
                user=acting_user(request),
                retrain_every_days=data["retrain_every_days"],
                reason=data["reason"],
            )

        response = confirm_with_reason(
            self,
            request,
            [category],
            title="How often the built-in model is retrained",
            submit_label="Retraining cadence set",
            apply=apply,
            form_class=RetrainCadenceForm,
            initial={"retrain_every_days": category.retrain_every_days},
        )
        return response or HttpResponseRedirect(reverse("admin:governance_category_change", args=[category.pk]))


@admin.register(Policy)
class PolicyAdmin(VisibleToAdminMixin, HitlModelAdmin[Policy]):
    """Read-only: a policy changes on its category's page (a new version with a reason); here is its history."""

    list_display = (
        "category",
        "version",
        "auto_threshold",
        "review_threshold",
        "auto_share",
        "audit_rate",
        "updated_at",
    )
    list_select_related = ("category",)
    search_fields = ("category__slug",)
    history_list_display = ("version",)
    fields = ("category", "version", *POLICY_FIELDS, "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        return False

    def get_object_tools(self, request: HttpRequest, obj: Policy) -> list[tuple[str, str]]:
        if can_change_category(request.user, obj.category):
            return [
                ("Change on the category page", reverse("admin:governance_category_change", args=[obj.category_id]))
            ]
        return []


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{key} = {item:g}" for key, item in value.items()) or "-"
    return "-" if value is None else str(value)
