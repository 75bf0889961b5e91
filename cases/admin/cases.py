"""Cases, read-only with their routing and audit trail; the input as the user may see it (redacted without
`cases.view_pii`), and the retention purge by hand. Layers above add filters to the list
(`register_case_list_filter`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from cases.admin.filters import ConfidenceFilter, ModelVersionFilter, SegmentFilter, VisibleQueueFilter, WaitingFilter
from cases.choices import CaseStatus
from cases.models import Case
from cases.permissions import shown_input
from cases.selectors import BLIND_NOTE, is_blind
from cases.services.retention import purge_expired_inputs, purge_preview
from governance.admin_mixins import HitlModelAdmin, VisibleCategoryFilter, VisibleToAdminMixin, acting_user
from governance.models import AuditEvent
from governance.permissions import may_purge_data
from governance.pii import redact

if TYPE_CHECKING:
    from django.urls import URLPattern
    from django.utils.safestring import SafeString


# Filters that layers above add to the case list (metrics: the cases behind a dashboard figure), before ours.
_REGISTERED_LIST_FILTERS: list[type[admin.ListFilter]] = []


def register_case_list_filter(list_filter: type[admin.ListFilter]) -> None:
    """Add `list_filter` to the case list's filters. Called from a higher app's admin module (cases never names
    it); registering the same class again does nothing."""
    if list_filter not in _REGISTERED_LIST_FILTERS:
        _REGISTERED_LIST_FILTERS.append(list_filter)


@admin.register(Case)
class CaseAdmin(VisibleToAdminMixin, HitlModelAdmin[Case]):
    """Cases, read-only for everyone: they change through intake and review decisions, never by hand."""

    list_display = (
        "id",
        "external_id",
        "category",
        "status_now",
        "route",
        "queue",
        "priority",
        "confidence",
        "model_version",
        "audit_sampled",
        "due_at",
        "created_at",
    )
    list_filter = (
        VisibleCategoryFilter,
        "status",
        "route",
        VisibleQueueFilter,
        WaitingFilter,
        ModelVersionFilter,
        ConfidenceFilter,
        SegmentFilter,
        "priority",
        "audit_sampled",
    )
    list_select_related = ("category", "queue", "model_version")
    search_fields = ("external_id__exact", "customer_ref__exact")
    search_help_text = "An exact external id or customer reference."
    raw_id_fields = ("category", "model_version", "queue", "claimed_by")
    # Counting every case of a big table on each page view costs more than the page; the filtered count is enough.
    show_full_result_count = False
    # Likewise a count per filter choice (facets): the confidence filter alone has a hundred choices.
    show_facets = admin.ShowFacets.NEVER
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "external_id",
                    "category",
                    "status_now",
                    "priority",
                    "customer_ref",
                    "created_at",
                    "decided_at",
                )
            },
        ),
        (
            "Model output",
            {
                "fields": (
                    "model_version",
                    "confidence",
                    "output_shown",
                    "input_shown",
                    "rules_fired",
                    "value",
                    "segment",
                )
            },
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
        ("Review", {"fields": ("held_by", "claimed_until", "final_output")}),
        ("Audit trail", {"fields": ("audit_events",)}),
    )
    # Every field shown is read-only: cases change through intake and decisions only.
    readonly_fields = tuple(name for _, options in fieldsets for name in cast("tuple[str, ...]", options["fields"]))

    @admin.display(description="status", ordering="status")
    def status_now(self, obj: Case) -> str:
        """A claim that ran out reads as waiting (`Case.status_at`), though nobody has cleared it yet."""
        return str(CaseStatus(obj.status_at(timezone.now())).label)

    @admin.display(description="claimed by")
    def held_by(self, obj: Case) -> str:
        """Whoever holds the case now; an expired claim holds nothing (`Case.holder_id_at`)."""
        if obj.holder_id_at(timezone.now()) is None or obj.claimed_by is None:
            return "—"
        return obj.claimed_by.get_username()

    def get_list_filter(self, request: HttpRequest) -> tuple[Any, ...]:
        # First: a registered filter says what the list is (the cases behind a dashboard figure), when in use.
        return (*_REGISTERED_LIST_FILTERS, *self.list_filter)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        return False

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Case:
        case: Case = super().get_object(request, object_id, from_field)
        # The input as this user may see it, worked out here where the request is known (display methods get
        # only the object); `input_shown` falls back to the redacted view if it is missing.
        case._input_shown = shown_input(  # type: ignore[attr-defined]
            case.input, pii_fields=case.category.pii_fields, user=request.user
        )
        return case

    @admin.display(description="input")
    def input_shown(self, obj: Case) -> SafeString:
        if "_input_shown" in obj.__dict__:
            shown = obj.__dict__["_input_shown"]
        else:
            shown = redact(obj.input, pii_fields=obj.category.pii_fields)
        note = "Personal data hidden: seeing it needs the cases.view_pii permission." if shown != obj.input else ""
        return format_html(
            "<pre>{}</pre>{}",
            json.dumps(shown, indent=2, ensure_ascii=False, default=str),
            format_html('<div class="help">{}</div>', note) if note else "",
        )

    @admin.display(description="output")
    def output_shown(self, obj: Case) -> SafeString:
        if is_blind(obj):
            # Blind review: nobody sees the model's answer before a person has given theirs (as in the API).
            return format_html('<p class="help">{}</p>', BLIND_NOTE)
        return format_html("<pre>{}</pre>", json.dumps(obj.output, indent=2, ensure_ascii=False, default=str))

    # --- the retention purge, by hand (data curators and superusers) ---

    def get_urls(self) -> list[URLPattern]:
        purge = path(
            "purge-expired/",
            self.admin_site.admin_view(self.purge_expired_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_purge_expired",
        )
        return [purge, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_purge": may_purge_data(request.user)}
        return super().changelist_view(request, extra_context)

    def purge_expired_view(self, request: HttpRequest) -> HttpResponse:
        """What the nightly `retention_purge` does, now: a page that shows each category's cutoff, then runs it."""
        if not may_purge_data(request.user):
            raise PermissionDenied("Only data curators and superusers may purge case inputs.")
        changelist_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        if request.method == "POST":
            result = purge_expired_inputs(user=acting_user(request))
            done = ", ".join(f"{slug}: {row['purged']}" for slug, row in result["categories"].items() if row["purged"])
            message = f"Purged the input of {result['purged']} case(s)" + (f" ({done})." if done else ".")
            self.message_user(request, message, messages.SUCCESS)
            return HttpResponseRedirect(changelist_url)
        rows = purge_preview(timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Purge expired inputs now",
            "rows": rows,
            "cancel_url": changelist_url,
        }
        return TemplateResponse(request, "admin/cases/purge_expired.html", context)

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
