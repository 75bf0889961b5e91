"""Alert rules (editable thresholds per category) and the alerts they fired (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join

from cases.admin import register_case_list_filter
from governance.admin.incidents import register_incident_panel
from governance.admin_mixins import HitlModelAdmin, VisibleCategoryFilter, VisibleToAdminMixin, acting_user
from governance.models import Incident
from governance.permissions import can_change_category
from metrics.dashboard.filters import KpiFigureFilter
from metrics.models import Alert, AlertRule, ModelVersionPerformance
from metrics.selectors import rate_with_interval, with_kpis
from metrics.services.alerts import EDITABLE_RULE_FIELDS, update_alert_rule


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
    list_display = ("category", "kind", "threshold", "window_hours", "min_count", "action", "active")
    list_filter = (VisibleCategoryFilter, "kind", "action", "active")
    list_select_related = ("category",)
    readonly_fields = ("category", "kind")
    fields = ("category", "kind", *EDITABLE_RULE_FIELDS, "reason")

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
    list_select_related = ("category", "rule", "incident")
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


register_incident_panel(alerts_fired)
# The case list learns to show the cases behind a dashboard figure (cases never names metrics).
register_case_list_filter(KpiFigureFilter)
