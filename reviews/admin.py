"""Decisions, read-only (append-only in the database; made through the review services)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from cases.selectors import BLIND_NOTE, is_blind
from governance.admin_mixins import VisibleCategoryFilter, VisibleToAdminMixin
from reviews.models import Decision

if TYPE_CHECKING:
    from django.utils.safestring import SafeString


class DecisionCategoryFilter(VisibleCategoryFilter):
    lookup = "case__category_id"


def _output_html(decision: Decision, output: Any) -> SafeString:
    if is_blind(decision.case):  # an escalated shadow case is still decided blind
        return format_html('<p class="help">{}</p>', BLIND_NOTE)
    return format_html("<pre>{}</pre>", json.dumps(output, indent=2, ensure_ascii=False, default=str))


@admin.register(Decision)
class DecisionAdmin(VisibleToAdminMixin, admin.ModelAdmin[Decision]):
    """Who decided what on which case; visible where the case is."""

    grants_open_admin = False
    list_display = (
        "id",
        "created_at",
        "case_link",
        "category",
        "action",
        "reason_code",
        "actor",
        "seconds_spent",
        "model_version",
        "policy_version",
        "batch_id",
    )
    list_filter = (DecisionCategoryFilter, "action", "reason_code")
    list_select_related = ("case__category", "actor")
    search_fields = ("case__external_id__exact",)
    search_help_text = "The exact external id of a case."
    show_full_result_count = False
    fields = (
        "case",
        "actor",
        "action",
        "output_before_shown",
        "output_after_shown",
        "reason_code",
        "notes",
        "seconds_spent",
        "batch_id",
        "model_version",
        "policy_version",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        return False

    @admin.display(description="output before")
    def output_before_shown(self, obj: Decision) -> SafeString:
        return _output_html(obj, obj.output_before)

    @admin.display(description="output after")
    def output_after_shown(self, obj: Decision) -> SafeString:
        return _output_html(obj, obj.output_after)

    @admin.display(description="case", ordering="case_id")
    def case_link(self, obj: Decision) -> SafeString:
        url = reverse("admin:cases_case_change", args=[obj.case_id])
        return format_html('<a href="{}">{}</a>', url, obj.case.external_id)

    @admin.display(description="category", ordering="case__category__slug")
    def category(self, obj: Decision) -> str:
        return obj.case.category.slug
