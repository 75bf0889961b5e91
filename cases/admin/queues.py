"""Queues: created with their category; their SLA and overflow changed here with a reason (`update_queue`), their
grants (`cases.work_queue`) on guardian's page."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse

from cases.models import Queue
from cases.services.queues import EDITABLE_QUEUE_FIELDS, check_queue_changes, update_queue
from governance.admin_mixins import GuardedHitlModelAdmin, VisibleCategoryFilter, VisibleToAdminMixin, acting_user
from governance.permissions import can_change_category


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
