"""Webhook endpoints per category (for its owners: superusers and `change_category` on it) and their deliveries.

Endpoints are created and changed through `governance.webhooks`; deliveries are read-only, with their attempts,
and can be retried now. A secret is shown once when it is made; afterwards only superusers can read it.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from governance.admin_mixins import HitlModelAdmin, VisibleCategoryFilter, VisibleToAdminMixin, acting_user
from governance.choices import DeliveryStatus, WebhookEvent
from governance.exceptions import Conflict
from governance.models import Category, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.permissions import can_change_category, changeable_category_ids
from governance.webhooks import ENDPOINT_FIELDS, create_endpoint, retry_now, rotate_secret, update_endpoint


class ManageableCategoryFilter(VisibleCategoryFilter):
    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        category_ids = changeable_category_ids(request.user)
        categories = Category.objects.order_by("slug").only("pk", "slug")
        if category_ids is not None:
            categories = categories.filter(pk__in=category_ids)
        return [(str(category.pk), category.slug) for category in categories]


class DeliveryCategoryFilter(ManageableCategoryFilter):
    lookup = "endpoint__category_id"


class WebhookEndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text=WebhookEndpoint._meta.get_field("url").help_text
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each chosen event of this category is POSTed to the URL.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("category", *ENDPOINT_FIELDS)


def _secret_page(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, secrets: list[tuple[Any, str]]
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Webhook secret" if len(secrets) == 1 else "Webhook secrets",
        "opts": model_admin.opts,
        "secrets": secrets,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/hitl/webhook_secret.html", context)


def _delivery_count(status: str) -> Coalesce:
    per_endpoint = (
        WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), status=status)
        .order_by()
        .values("endpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(per_endpoint), 0)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(VisibleToAdminMixin, HitlModelAdmin[WebhookEndpoint]):
    """Where a category's events go. Registered per category by whoever may change that category."""

    form = WebhookEndpointForm
    list_display = ("url", "category", "event_list", "active", "pending", "failed", "timeout_seconds", "max_attempts")
    list_filter = (ManageableCategoryFilter, "active")
    list_select_related = ("category",)
    search_fields = ("url", "category__slug")
    actions = ("rotate_secret_selected",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Counted in the list query itself (a fixed number of queries however many endpoints there are), each
        # from the (endpoint, status) index rather than a join over every delivery ever made.
        queryset: QuerySet[Any] = (
            super()
            .get_queryset(request)
            .annotate(
                pending_count=_delivery_count(DeliveryStatus.PENDING),
                failed_count=_delivery_count(DeliveryStatus.FAILED),
            )
        )
        return queryset

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("category", *ENDPOINT_FIELDS)
        secret = "secret_display" if request.user.is_superuser else "secret_note"
        return ("category", *ENDPOINT_FIELDS, secret, "deliveries_link", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # The category is fixed: pending deliveries carry its events and must not follow the endpoint elsewhere.
        readonly = ("category", "secret_display", "secret_note", "deliveries_link", "created_at")
        return readonly if self.has_change_permission(request, obj) else (*readonly, *ENDPOINT_FIELDS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_change_category(request.user)

    def has_change_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        return can_change_category(request.user, obj.category if obj is not None else None)

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        # Deliveries protect their endpoint (they are its log); an endpoint that sent nothing may go.
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            category_ids = changeable_category_ids(request.user)
            categories = Category.objects.all()
            kwargs["queryset"] = categories if category_ids is None else categories.filter(pk__in=category_ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description="pending", ordering="pending_count")
    def pending(self, obj: WebhookEndpoint) -> int:
        return int(getattr(obj, "pending_count", 0))

    @admin.display(description="failed", ordering="failed_count")
    def failed(self, obj: WebhookEndpoint) -> int:
        return int(getattr(obj, "failed_count", 0))

    @admin.display(description="secret")
    def secret_display(self, obj: WebhookEndpoint) -> str:
        return format_html("<code>{}</code>", obj.secret)  # only in a superuser's fields (get_fields)

    @admin.display(description="secret")
    def secret_note(self, obj: WebhookEndpoint) -> str:
        return "Shown once, when the endpoint was registered or its secret rotated (a superuser can read it)."

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:governance_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">Deliveries of this endpoint</a>', url)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: WebhookEndpointForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in ENDPOINT_FIELDS}
            if changes:
                update_endpoint(endpoint=obj, user=acting_user(request), changes=changes)
            return
        created = create_endpoint(
            category=data["category"], user=acting_user(request), **{name: data[name] for name in ENDPOINT_FIELDS}
        )
        obj.pk, obj.secret = created.pk, created.secret
        obj._state.adding = False

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        self.message_user(request, f"Webhook endpoint {obj} registered.", messages.SUCCESS)
        return _secret_page(self, request, [(obj, obj.secret)])

    @admin.action(description="Rotate the secret of the selected endpoints (shown once)", permissions=["change"])
    def rotate_secret_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse:
        endpoints = [e for e in queryset.select_related("category") if self.has_change_permission(request, e)]
        secrets = [(endpoint, rotate_secret(endpoint=endpoint, user=acting_user(request))) for endpoint in endpoints]
        return _secret_page(self, request, secrets)


class WebhookAttemptInline(admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    """Every attempt of a delivery, read-only (the delivery's own visibility already decides who sees it)."""

    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "status_code", "succeeded", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(VisibleToAdminMixin, admin.ModelAdmin[WebhookDelivery]):
    """Every delivery with its attempts, read-only; "retry now" sends a pending or failed one at once."""

    list_display = (
        "id",
        "event_kind",
        "event_seq",
        "category",
        "endpoint_url",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    )
    list_filter = ("status", "event_kind", DeliveryCategoryFilter)
    list_select_related = ("endpoint__category",)
    search_fields = ("=event_seq", "=case_id", "endpoint__url")
    show_full_result_count = False
    actions = ("retry_now_selected",)
    inlines = (WebhookAttemptInline,)
    fields = (
        "endpoint",
        "event_kind",
        "event_seq",
        "case_id",
        "status",
        "attempts",
        "next_attempt_at",
        "sending_until",
        "last_status_code",
        "last_error",
        "last_duration_ms",
        "delivered_at",
        "created_at",
        "body_pretty",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # Whoever sees a delivery manages its endpoint's category (the queryset says so).
        return self.has_view_permission(request)

    @admin.display(description="category", ordering="endpoint__category__slug")
    def category(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.category.slug

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_url(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.url

    @admin.display(description="body")
    def body_pretty(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False))

    @admin.action(description="Retry the selected deliveries now", permissions=["retry"])
    def retry_now_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        retried = 0
        for delivery in queryset:
            try:
                retry_now(delivery=delivery, user=acting_user(request))
            except Conflict as exc:
                self.message_user(request, f"Delivery {delivery.pk}: {exc}", messages.WARNING)
            else:
                retried += 1
        if retried:
            self.message_user(request, f"{retried} deliveries queued to be sent now.", messages.SUCCESS)
