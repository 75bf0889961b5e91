"""Alert rules (editable thresholds per category) and the alerts they fired (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from cases.admin import register_case_list_filter
from governance.admin.incidents import register_incident_panel
from governance.admin.model_versions import (
    register_model_version_panel,
    register_model_version_tool,
    register_promotion_panel,
)
from governance.admin_mixins import (
    HitlModelAdmin,
    RefreshWhileRunningMixin,
    VisibleCategoryFilter,
    VisibleToAdminMixin,
    acting_user,
)
from governance.choices import ModelStatus
from governance.models import Category, Incident, ModelVersion
from governance.permissions import can_change_category, can_retrain
from governance.promotion_gate import BUILTIN_MODEL_NAME
from metrics.dashboard.filters import KpiFigureFilter
from metrics.models import Alert, AlertRule, ModelVersionPerformance, TrainingRun
from metrics.selectors import live_shadow_agreement, rate_with_interval, with_kpis
from metrics.services.alerts import EDITABLE_RULE_FIELDS, current_finding, update_alert_rule
from metrics.services.retraining import request_training


class _CategoryScoped(VisibleToAdminMixin):
    grants_open_admin = False


class AlertRuleForm(forms.ModelForm[AlertRule]):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), help_text="Why the rule changes: kept in its history."
    )

    class Meta:
        model = AlertRule
        fields = EDITABLE_RULE_FIELDS


@admin.register(AlertRule)
class AlertRuleAdmin(_CategoryScoped, HitlModelAdmin[AlertRule]):
    """Thresholds are tuned per category by whoever may change the category (product owners), one rule at a time
    with a reason, through `update_alert_rule`; the history says who changed what and why."""

    form = AlertRuleForm
    # Short columns, each rule's full wording in its kind's tooltip: the list fits beside its filters on a laptop.
    list_display = (
        "category",
        "kind_name",
        "threshold",
        "current_value",
        "window",
        "min_count",
        "action_name",
        "active",
    )
    list_filter = (VisibleCategoryFilter, "kind", "action", "active")
    list_select_related = ("category",)
    readonly_fields = ("category", "kind", "current_value")
    fields = ("category", "kind", "current_value", *EDITABLE_RULE_FIELDS, "reason")

    @admin.display(description="kind", ordering="kind")
    def kind_name(self, obj: AlertRule) -> SafeString:
        short = obj.kind.replace("_", " ").capitalize()
        return format_html('<span title="{}">{}</span>', obj.get_kind_display(), short)

    @admin.display(description="window", ordering="window_hours")
    def window(self, obj: AlertRule) -> str:
        return f"{obj.window_hours} h"

    @admin.display(description="action", ordering="action")
    def action_name(self, obj: AlertRule) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.get_action_display(), obj.action)

    @admin.display(description="now")
    def current_value(self, obj: AlertRule) -> SafeString | str:
        """The figure the threshold is compared with, over the rule's window ending now (the alert check's own
        measure): a warning when it fires, and how many observations it rests on against the minimum."""
        finding = current_finding(obj)
        if finding is None or finding.value is None:
            return format_html('<span title="{}">-</span>', "Nothing to measure in the window yet.")
        about = f"{finding.subject}: " if finding.subject else ""
        if finding.fires:
            return format_html(
                '<img src="{}" alt="Over the threshold"> <strong>{}{}</strong> (n={})',
                static("admin/img/icon-alert.svg"),
                about,
                f"{finding.value:.3g}",
                finding.count,
            )
        if finding.count < obj.min_count:
            return format_html(
                '{}{} <span title="Fewer observations than the minimum never fire.">(n={}, under {})</span>',
                about,
                f"{finding.value:.3g}",
                finding.count,
                obj.min_count,
            )
        return format_html("{}{} (n={})", about, f"{finding.value:.3g}", finding.count)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm[AlertRule], change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_RULE_FIELDS}
        update_alert_rule(rule=obj, user=acting_user(request), changes=changes, reason=form.cleaned_data["reason"])
        obj.refresh_from_db()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # every category gets one rule of each kind

    def has_delete_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AlertRule | None = None) -> bool:
        if obj is None:
            return bool(request.user.is_superuser or request.user.has_perm("metrics.change_alertrule"))
        return can_change_category(request.user, obj.category)


@admin.register(Alert)
class AlertAdmin(_CategoryScoped, admin.ModelAdmin[Alert]):
    list_display = ("fired_at", "category", "rule", "subject", "value", "threshold", "incident")
    list_filter = (VisibleCategoryFilter, "rule__kind")
    list_select_related = ("category", "rule__category", "incident")
    readonly_fields = ("rule", "category", "subject", "fired_at", "value", "threshold", "details", "incident")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False


@admin.register(ModelVersionPerformance)
class ModelVersionPerformanceAdmin(VisibleToAdminMixin, admin.ModelAdmin[ModelVersionPerformance]):
    """How each version's outputs fared with people: canary and active side by side, and shadow agreement with
    its 95 % Wilson interval. One annotated query for the whole list."""

    grants_open_admin = False
    list_display = (
        "label",
        "category",
        "status",
        "kpi_cases_col",
        "auto_share_col",
        "override_col",
        "audit_error_col",
        "shadow_agreement_col",
    )
    list_filter = (VisibleCategoryFilter, "status")
    list_select_related = ("category",)
    ordering = ("category__slug", "status", "name")

    def restrict(self, queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
        return with_kpis(super().restrict(queryset, user))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser or request.user.has_perm("governance.view_modelversion"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="cases", ordering="kpi_cases")
    def kpi_cases_col(self, obj: Any) -> int:
        return int(obj.kpi_cases)

    @admin.display(description="auto")
    def auto_share_col(self, obj: Any) -> str:
        return _share(obj.kpi_auto, obj.kpi_cases)

    @admin.display(description="overridden by people")
    def override_col(self, obj: Any) -> str:
        return _share(obj.kpi_overridden, obj.kpi_reviewed)

    @admin.display(description="audit: flagged")
    def audit_error_col(self, obj: Any) -> str:
        return _share(obj.kpi_flagged, obj.kpi_audited)

    @admin.display(description="shadow agreement (95 % CI)")
    def shadow_agreement_col(self, obj: Any) -> str:
        return _share(obj.kpi_shadow_agree, obj.kpi_shadow_total)


def _share(successes: int, total: int) -> str:
    """'83 % (78-87 %, n=120)': the share with its Wilson interval, or '-' with nothing observed."""
    if not total:
        return "-"
    stats = rate_with_interval(successes, total)
    return f"{stats['rate']:.0%} ({stats['low']:.0%}-{stats['high']:.0%}, n={total})"


@admin.display(description="alerts")
def alerts_fired(incident: Incident) -> str:
    """The incident page's links to the alerts that fired into it."""
    alerts = Alert.objects.filter(incident=incident).select_related("rule")
    links = format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        ((reverse("admin:metrics_alert_change", args=[a.pk]), f"{a.rule.kind} {a.value:.3g}") for a in alerts),
    )
    return links or "-"


class TrainingRunForm(forms.ModelForm[TrainingRun]):
    """Which category's built-in model to train (on its gated labels, as `runjob train_model` would)."""

    class Meta:
        model = TrainingRun
        fields = ("category",)


@admin.register(TrainingRun)
class TrainingRunAdmin(_CategoryScoped, RefreshWhileRunningMixin, admin.ModelAdmin[TrainingRun]):
    """Trainings of the built-in model: start one here (or from a model version's page), watch its progress in the
    list, which reloads itself while one is on its way; each ends in a new version in shadow or a refusal and why."""

    form = TrainingRunForm
    list_display = ("id", "created_at", "category", "trigger", "requested_by", "status", "progress_bar", "outcome")
    list_filter = (VisibleCategoryFilter, "status", "trigger")
    list_select_related = ("category", "requested_by", "model_version")
    running_filter = {"status__in": [TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]}
    readonly_fields = (
        "category",
        "trigger",
        "requested_by",
        "status",
        "progress_bar",
        "message",
        "model_version",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        if not (user.is_superuser or user.has_perm("governance.view_modelversion")):
            return False
        return obj is None or self.is_visible(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(self._retrainable(request).exists())

    def has_change_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        return False

    def _retrainable(self, request: HttpRequest) -> QuerySet[Category]:
        visible = Category.objects.visible_to(request.user)
        return visible.filter(pk__in=[c.pk for c in visible if can_retrain(request.user, c)])

    def get_fields(self, request: HttpRequest, obj: TrainingRun | None = None) -> Any:
        return ("category",) if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: TrainingRun | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            kwargs["queryset"] = self._retrainable(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: TrainingRun, form: Any, change: bool) -> None:
        # The form offers only categories the user may retrain; a run already open for it is the answer.
        run = request_training(category=obj.category, user=acting_user(request), trigger=TrainingRun.Trigger.MANUAL)
        obj.pk = run.pk
        obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: TrainingRun, post_url_continue: str | None = None) -> Any:
        # To the list, where its progress shows and moves.
        self.message_user(request, f"Training of {obj.category.slug} queued as run #{obj.pk}.")
        return HttpResponseRedirect(reverse("admin:metrics_trainingrun_changelist"))

    @admin.display(description="progress")
    def progress_bar(self, obj: TrainingRun) -> SafeString:
        return format_html(
            '<progress value="{}" max="1" style="width:10em"></progress> {}',
            f"{obj.progress:.3f}",
            f"{obj.progress:.0%}",
        )

    @admin.display(description="outcome")
    def outcome(self, obj: TrainingRun) -> SafeString | str:
        if obj.model_version_id is not None:
            url = reverse("admin:governance_modelversion_change", args=[obj.model_version_id])
            return format_html('<a href="{}">{}</a>', url, str(obj.model_version))
        return obj.message[:160]


@admin.display(description="held out, beside the active version")
def held_out_versus_active(version: ModelVersion) -> SafeString | str:
    """A built-in version's held-out figures beside the active version's on the same cases (training's
    `versus_active`), at the policy's auto threshold when it was trained: what the promotion gate compares."""
    versus = (version.metrics or {}).get("versus_active")
    if not isinstance(versus, dict):
        return "-"
    ours, theirs = versus.get("builtin") or {}, versus.get("active_figures") or {}
    threshold = float(versus.get("auto_threshold") or 0)
    rows = [
        ("accuracy", _number(ours.get("accuracy")), _number(theirs.get("accuracy"))),
        (f"would act at {threshold:.2f}", _number(ours.get("share"), "%"), _number(theirs.get("share"), "%")),
        (f"error rate at {threshold:.2f}", _number(ours.get("error_rate")), _number(theirs.get("error_rate"))),
    ]
    return format_html(
        "<table><tr><th></th><th>{}</th><th>{}</th></tr>{}</table><p>on the same {} held-out cases</p>",
        version.label,
        versus.get("active") or "no active version",
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows),
        versus.get("n", 0),
    )


@admin.display(description="live agreement with people")
def live_agreement(version: ModelVersion) -> SafeString | str:
    """A built-in version's agreement with the human verdicts on the cases it answered in shadow, beside the
    agreement of the answers those cases came with."""
    if version.name != BUILTIN_MODEL_NAME:
        return "-"
    figures = live_shadow_agreement(version)
    if not figures["n"]:
        return "No case it answered in shadow has a human verdict yet."
    others = ", ".join(f"{name}@{number}" for name, number in figures["answered_by"]) or "the cases' own model"
    rows = [
        (version.label, _share(figures["shadow"]["rate"] * figures["n"], figures["n"])),
        (others, _share(figures["case"]["rate"] * figures["n"], figures["n"])),
    ]
    return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))


@admin.display(description="Live figures: this version, the active one and the canary")
def live_figures_for_promotion(version: ModelVersion) -> SafeString:
    """How the outputs of this version, the category's active version and its canary fared with people on live
    cases (all time, as the model version performance list counts them): one annotated query."""
    others = Q(status__in=[ModelStatus.ACTIVE, ModelStatus.CANARY]) | Q(pk=version.pk)
    # Annotated rows (kpi_* attributes), which the model's type does not declare.
    rows: list[Any] = list(
        with_kpis(ModelVersion.objects.filter(others, category_id=version.category_id).order_by("status", "pk"))
    )
    cells = (
        (
            f"{row.label} ({row.status}){' - this one' if row.pk == version.pk else ''}",
            row.kpi_cases,
            _share(row.kpi_auto, row.kpi_cases),
            _share(row.kpi_overridden, row.kpi_reviewed),
            _share(row.kpi_flagged, row.kpi_audited),
            _share(row.kpi_shadow_agree, row.kpi_shadow_total),
        )
        for row in rows
    )
    return format_html(
        '<table class="hitl-evidence"><thead><tr><th></th><th>cases</th><th>acted on its own</th>'
        "<th>overridden by people</th><th>audit: flagged</th><th>shadow agreement</th></tr></thead>{}</table>",
        format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells),
    )


def train_builtin_tool(request: HttpRequest, version: ModelVersion) -> tuple[str, str] | None:
    """'Train a new built-in model' above a version's page, for those who may retrain its category."""
    if not can_retrain(request.user, version.category):
        return None
    url = reverse("admin:metrics_trainingrun_add") + f"?category={version.category_id}"
    return ("Train a new built-in model", url)


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{float(value):.0%}" if unit == "%" else f"{float(value):.3f}"


register_incident_panel(alerts_fired)
register_model_version_panel(held_out_versus_active)
register_model_version_panel(live_agreement)
register_model_version_tool(train_builtin_tool)
register_promotion_panel(live_figures_for_promotion)
# The case list learns to show the cases behind a dashboard figure (cases never names metrics).
register_case_list_filter(KpiFigureFilter)
