"""The cases admin: queues (whose grants say who works them) and cases, read-only with their routing and audit trail;
the input as the user may see it (redacted without `cases.view_pii`), and the retention purge by hand.

A list page costs a fixed number of queries whatever the number of rows (`list_select_related`, filters whose
choices come from the small category and queue tables), and shows only what `visible_to(user)` allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from cases.choices import OPEN_STATUSES, AuditStatus, CaseStatus
from cases.models import Case, Queue
from cases.permissions import shown_input
from cases.selectors import BLIND_NOTE, confidence_bucket, is_blind
from cases.services.queues import EDITABLE_QUEUE_FIELDS, check_queue_changes, update_queue
from cases.services.retention import purge_expired_inputs, purge_preview
from governance.admin.incidents import register_incident_panel
from governance.admin_mixins import (
    GuardedHitlModelAdmin,
    HitlModelAdmin,
    VisibleCategoryFilter,
    VisibleToAdminMixin,
    acting_user,
    offered_value,
)
from governance.models import AuditEvent, Incident, ModelVersion
from governance.permissions import can_change_category, may_purge_data
from governance.pii import redact

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.urls import URLPattern
    from django.utils.safestring import SafeString


class VisibleQueueFilter(admin.SimpleListFilter):
    """Filter by queue, offering only the queues the user may see."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        queues = Queue.objects.visible_to(request.user).order_by("slug").only("pk", "slug")
        return [(str(queue.pk), queue.slug) for queue in queues]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        return queryset.filter(queue_id=value) if value else queryset


class ModelVersionFilter(admin.SimpleListFilter):
    """Filter by model version, offering only the versions of the categories the user may see."""

    title = "model version"
    parameter_name = "model_version"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        versions = ModelVersion.objects.visible_to(request.user).select_related("category")
        ordered = sorted(versions, key=lambda v: (v.category.slug, v.name, v.version))
        return [(str(v.pk), f"{v.label} ({v.category.slug})") for v in ordered]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        return queryset.filter(model_version_id=value) if value else queryset


class WaitingFilter(admin.SimpleListFilter):
    """Cases waiting for a person now: open ones, and auto-approved ones drawn for audit not audited yet (what a
    queue's depth counts, `Case.objects.waiting`)."""

    title = "waiting for a person"
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Waiting"), ("no", "Not waiting")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        waiting = Q(status__in=OPEN_STATUSES) | Q(audit_status=AuditStatus.PENDING)
        value = offered_value(self)
        if value == "yes":
            return queryset.filter(waiting)
        return queryset.exclude(waiting) if value == "no" else queryset


# Tenths of [0, 1] (the confidence histogram's bars) and "at least" in hundredths (the threshold advisor's rows).
_TENTHS = [(f"{b / 10:.1f}-{(b + 1) / 10:.1f}", b) for b in range(10)]
_AT_LEAST = [(f"{h / 100:.2f}-", h) for h in range(1, 100)]


class ConfidenceFilter(admin.SimpleListFilter):
    """Filter by confidence: a tenth of [0, 1] (`0.3-0.4`) or at least a value in hundredths (`0.87-`), cut by the
    same bucketing as the KPIs (`cases.selectors.confidence_bucket`), so the list holds a bar's cases exactly."""

    title = "confidence"
    parameter_name = "confidence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenths = [(key, key.replace("-", " to ")) for key, _ in _TENTHS]
        return [*tenths, *((key, f"{key[:-1]} or more") for key, _ in _AT_LEAST)]

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        # The sidebar offers the tenths; an "at least" value (from a dashboard link) shows only while chosen.
        for choice in super().choices(changelist):
            if choice["selected"] or "or more" not in str(choice["display"]):
                yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        if not value:
            return queryset
        narrowed: QuerySet[Any]
        if value in dict(_TENTHS):
            narrowed = queryset.alias(_tenth=confidence_bucket(10)).filter(_tenth=dict(_TENTHS)[value])
        else:
            narrowed = queryset.alias(_hundredth=confidence_bucket(100)).filter(_hundredth__gte=dict(_AT_LEAST)[value])
        return narrowed


_SEGMENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SegmentFilter(admin.SimpleListFilter):
    """One value of one segment key, `?segment=channel:email` (the fairness rows link here). The key is checked
    against a plain name pattern and always read as a JSON key, never as a lookup; the value is a bound parameter.
    Not offered in the sidebar (listing every segment would scan the cases), shown while in use."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def has_output(self) -> bool:
        return self.value() is not None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        key, sep, wanted = value.partition(":")
        if not sep or not _SEGMENT_KEY.fullmatch(key) or "__" in key or len(wanted) > 200:
            raise IncorrectLookupParameters("segment must be key:value, e.g. channel:email.")
        matches = Q(_segment_value=wanted)
        try:
            decoded = json.loads(wanted)  # a number or true/false is shown as its JSON text
        except ValueError:
            decoded = None
        if decoded is not None and not isinstance(decoded, str):
            matches |= Q(_segment_value=decoded)
        narrowed: QuerySet[Any] = queryset.alias(_segment_value=KeyTransform(key, "segment")).filter(matches)
        return narrowed


# Filters that layers above add to the case list (metrics: the cases behind a dashboard figure), before ours.
_REGISTERED_LIST_FILTERS: list[type[admin.ListFilter]] = []


def register_case_list_filter(list_filter: type[admin.ListFilter]) -> None:
    """Add `list_filter` to the case list's filters. Called from a higher app's admin module (cases never names
    it); registering the same class again does nothing."""
    if list_filter not in _REGISTERED_LIST_FILTERS:
        _REGISTERED_LIST_FILTERS.append(list_filter)


class QueueForm(forms.ModelForm[Queue]):
    """A queue's SLA and overflow, with the reason for changing them; the rules are the service's."""

    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why the SLA or overflow changes. Required for a change: it goes into the queue's history and the "
        "audit trail.",
    )

    class Meta:
        model = Queue
        fields = EDITABLE_QUEUE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue_changes: dict[str, Any] = {}
        if "next_queue" in self.fields and self.instance.pk is not None:
            # Overdue cases stay in their category: offer its other queues only.
            field = cast("forms.ModelChoiceField[Queue]", self.fields["next_queue"])
            field.queryset = Queue.objects.filter(category_id=self.instance.category_id).exclude(pk=self.instance.pk)
            field.help_text = "Where an overdue case goes; empty: it stays here, marked overdue."
            # Its own pages are a click away in the list; here the choice is all that matters.
            field.widget.can_change_related = field.widget.can_view_related = False
        if "sla" in self.fields:
            self.fields["sla"].label = "SLA"
            self.fields["sla"].help_text = (
                "How long a case may wait here: hours:minutes:seconds, with days first, e.g. 4:00:00 for four hours, "
                "1 00:00:00 for a day. Cases already waiting keep their due time."
            )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        names = [name for name in EDITABLE_QUEUE_FIELDS if name in self.fields and name not in self.errors]
        current = Queue.objects.get(pk=self.instance.pk)
        self.queue_changes = {name: cleaned.get(name) for name in names if cleaned.get(name) != getattr(current, name)}
        if self.queue_changes and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "A reason is required: say why the queue changes, for its history.")
        try:
            check_queue_changes(current, self.queue_changes)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


@admin.register(Queue)
class QueueAdmin(VisibleToAdminMixin, GuardedHitlModelAdmin[Queue]):
    """Queues are created with their category. The owner of the category (who may change it) sets each queue's
    SLA and overflow here, with a reason (`update_queue`); the grants (`cases.work_queue`) are managed on guardian's
    page by those who hold its permissions."""

    form = QueueForm
    list_display = ("slug", "category", "kind", "sla", "next_queue", "allow_batch")
    list_filter = (VisibleCategoryFilter, "kind", "allow_batch")
    list_select_related = ("category", "next_queue")
    search_fields = ("slug", "name")
    shown_fields = ("slug", "name", "category", "kind", "sla", "next_queue", "allow_batch", "review_floor_seconds")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        # "Change" opens the page: to edit the SLA and overflow (the category's owner) or, for those who hold
        # guardian's permissions, to reach its page of who may work the queue.
        return self.can_manage_object_permissions(request) or self.may_edit(request, obj)

    def may_edit(self, request: HttpRequest, obj: Queue | None) -> bool:
        if obj is None:
            return can_change_category(request.user)
        return can_change_category(request.user, obj.category)

    def get_fields(self, request: HttpRequest, obj: Queue | None = None) -> tuple[str, ...]:
        return (*self.shown_fields, "reason") if self.may_edit(request, obj) else self.shown_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Queue | None = None) -> tuple[str, ...]:
        if self.may_edit(request, obj):
            return tuple(name for name in self.shown_fields if name not in EDITABLE_QUEUE_FIELDS)
        return self.shown_fields

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and not self.may_edit(request, obj):
            context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Queue, form: QueueForm, change: bool) -> None:
        if not self.may_edit(request, obj):
            raise PermissionDenied
        if not form.queue_changes:
            self.message_user(request, "The queue did not change.", messages.INFO)
            return
        try:
            update_queue(
                queue=obj, user=acting_user(request), changes=form.queue_changes, reason=form.cleaned_data["reason"]
            )
        except (ValidationError, PermissionDenied) as exc:  # a concurrent change since the form was checked
            self.message_user(request, " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR)

    def has_delete_permission(self, request: HttpRequest, obj: Queue | None = None) -> bool:
        return False


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


@admin.display(description="affected cases")
def affected_cases(incident: Incident) -> str:
    """The incident page's links to the cases it affected (the first 50, and how many in all)."""
    ids = incident.affected_case_ids or []
    links = format_html_join(
        ", ", '<a href="{}">{}</a>', ((reverse("admin:cases_case_change", args=[pk]), pk) for pk in ids[:50])
    )
    return format_html("{} ({} in all)", links, len(ids)) if ids else "-"


register_incident_panel(affected_cases)
