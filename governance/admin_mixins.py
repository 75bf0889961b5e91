"""What every HITL Desk admin shares: the visibility boundary, history without reverts, and reason prompts.

Visibility is the models' `visible_to(user)`, applied in `get_queryset` before any lookup, so the admin draws the
same line as the API and exports: an object the user may not see is a 404, never a 403 that confirms it exists.
Object grants (guardian) open an admin on their own: a product owner with `change_category` on one category opens
the category list without a global `view_category` (which would open every category).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils import timezone
from guardian.admin import ReinforcedGuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from governance.exceptions import Conflict
from governance.models import Category

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from governance.permissions import VisibleQuerySet

_M = TypeVar("_M", bound=Model)

if TYPE_CHECKING:
    # A mixin for ModelAdmin subclasses: to the type checker it is a ModelAdmin, so its super() calls reach
    # ModelAdmin's typed methods; at run time it is a plain mixin.
    _AdminBase = admin.ModelAdmin[Any]

    class _HistoryAdmin(admin.ModelAdmin[_M]):
        """What HitlModelAdmin uses of simple-history's SimpleHistoryAdmin, which ships no types."""

        def history_view(
            self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
        ) -> HttpResponse: ...

else:
    _AdminBase = object
    # `_HistoryAdmin[_M]` below is SimpleHistoryAdmin itself (django_stubs_ext.monkeypatch(), in the settings).
    _HistoryAdmin = SimpleHistoryAdmin

# Guardian's own permissions, which its "Object permissions" pages require (ReinforcedGuardedModelAdminMixin).
OBJECT_PERMISSION_ADMIN_PERMS = (
    "guardian.view_userobjectpermission",
    "guardian.view_groupobjectpermission",
    "guardian.change_userobjectpermission",
    "guardian.change_groupobjectpermission",
)


class VisibleToAdminMixin(_AdminBase):
    """Narrow an admin to what the user may see, and let object grants open it.

    `restrict()` is the one place an admin says what "visible" means for its model (by default the model's
    `visible_to(user)` queryset method). With `grants_open_admin`, visibility alone lets a user view the list and
    the objects in it; without it, the role's model permission (e.g. `reviews.view_decision`) is needed as well.
    """

    grants_open_admin = True

    def restrict(self, queryset: QuerySet[Any], user: User | AnonymousUser) -> QuerySet[Any]:
        # Every model whose admin keeps this default has a queryset with `visible_to`; QuerySet[Any] cannot say so.
        return cast("VisibleQuerySet", queryset).visible_to(user)

    def _request_cache(self, request: HttpRequest) -> dict[tuple[str, object], Any]:
        # Visibility costs a few queries (the user's grants); work it out once per request and model.
        cache: dict[tuple[str, object], Any] = request.__dict__.setdefault("_hitl_admin_visibility", {})
        return cache

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        cache = self._request_cache(request)
        key = (self.opts.label, "queryset")
        if key not in cache:
            cache[key] = self.restrict(super().get_queryset(request), request.user)
        visible: QuerySet[Any] = cache[key]
        return visible.all()

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Missing and not visible look the same: a 404, not Django's redirect that names the id.
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def has_any_visible(self, request: HttpRequest) -> bool:
        cache = self._request_cache(request)
        key = (self.opts.label, "any")
        if key not in cache:
            cache[key] = self.get_queryset(request).exists()
        return bool(cache[key])

    def is_visible(self, request: HttpRequest, obj: Model) -> bool:
        cache = self._request_cache(request)
        key = (self.opts.label, obj.pk)
        if key not in cache:
            cache[key] = self.get_queryset(request).filter(pk=obj.pk).exists()
        return bool(cache[key])

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        role_allows = super().has_view_permission(request)  # the global permission a role (group) gives
        if not self.grants_open_admin and not role_allows:
            return False
        if obj is not None:
            return self.is_visible(request, obj)
        return role_allows or self.has_any_visible(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_view_permission(request)


NO_VALUE = "—"


class ReadableHistoryHelper(HistoricalRecordContextHelper):  # type: ignore[misc]
    """The history's "what changed" column in words a person reads: an empty link reads as empty, not as simple-
    history's "Deleted user (pk=None)" (it takes every None foreign key for a deleted row); instants in local time
    to the minute, yes/no, and lists and mappings without their JSON brackets."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        value = super().prepare_delta_change_value(change, value)
        if value is None or value == "" or (isinstance(value, DeletedObject) and value.pk is None):
            return NO_VALUE
        if isinstance(value, datetime):
            return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if timezone.is_aware(value) else str(value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return ", ".join(str(item) for item in value) or NO_VALUE
        if isinstance(value, dict):
            return ", ".join(f"{key}: {item}" for key, item in value.items()) or NO_VALUE
        return value


class HitlModelAdmin(_HistoryAdmin[_M]):
    """The base of the admins of history-tracked models: history with its diffs, but never a revert.

    Every write goes through a service that records who, why and an audit event; simple-history's "revert"
    would bypass all three, so its per-version form is refused and the history list links nowhere.
    `read_only_change_form` is for models that have nothing editable on their change page (their writes are
    actions or tools), so no Save button offers to save nothing.
    """

    change_form_template = "admin/hitl/change_form.html"
    object_history_list_template = "admin/hitl/object_history_list.html"
    read_only_change_form = False

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> Any:
        return ReadableHistoryHelper(self.model, historical_record)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:  # before simple-history looks at the history
            raise Http404
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method != "GET":
            raise PermissionDenied("Past versions are never restored from the admin; make a new change instead.")
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_history", args=[object_id])
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.read_only_change_form and request.method == "POST":
            self.get_object(request, unquote(object_id))  # an object the user may not see stays a 404
            raise PermissionDenied
        return super().change_view(request, object_id, form_url, extra_context)

    def get_object_tools(self, request: HttpRequest, obj: Any) -> list[tuple[str, str]]:
        """Links (label, url) shown above the change form, e.g. to pause a category or promote a version."""
        return []

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["object_tools"] = self.get_object_tools(request, obj) if obj is not None else []
        if change and self.read_only_change_form:
            context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)


class GuardedHitlModelAdmin(ReinforcedGuardedModelAdminMixin, HitlModelAdmin[_M]):
    """HitlModelAdmin with guardian's "Object permissions" pages (who may work a queue, own a category).

    The reinforced mixin (guardian's GuardedModelAdmin plus a check of guardian's own permissions) keeps those
    pages to superusers and whoever holds the object-permission admin rights: a product owner who may change a
    category must not be able to hand out grants on it.
    """

    # Guardian's mixin comes first in the MRO and would show its link to everyone; ours shows it to those above.
    # (Guardian declares it an instance variable, django-stubs a ClassVar: the two disagree, not this line.)
    change_form_template = HitlModelAdmin.change_form_template  # type: ignore[misc]

    def get_urls(self) -> list[URLPattern]:
        # Guardian's pages plus ModelAdmin's, as inherited: overridden only to type them (guardian does not).
        urls: list[URLPattern] = super().get_urls()  # type: ignore[no-untyped-call]
        return urls

    def can_manage_object_permissions(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perms(OBJECT_PERMISSION_ADMIN_PERMS))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["can_manage_object_permissions"] = change and self.can_manage_object_permissions(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


class VisibleCategoryFilter(admin.SimpleListFilter):
    """Filter by category, offering only the categories the user may see (a plain FK filter lists them all)."""

    title = "category"
    parameter_name = "category"
    lookup = "category_id"  # the path from the admin's model to the category's id (or slug, with by_slug)
    by_slug = False

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        categories = Category.objects.visible_to(request.user).order_by("slug").only("pk", "slug")
        return [(category.slug if self.by_slug else str(category.pk), category.slug) for category in categories]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        return queryset.filter(**{self.lookup: value}) if value else queryset


def offered_value(list_filter: admin.SimpleListFilter) -> str | None:
    """The filter's value if it is one of the choices it offers; anything else (`?category=abc`, a category the
    user may not see) is refused the admin's way, as a bad filter, not a 500."""
    value = list_filter.value()
    if value is not None and value not in {str(key) for key, _ in list_filter.lookup_choices}:
        raise IncorrectLookupParameters(f"{list_filter.parameter_name}={value!r} is not one of the choices offered.")
    return value


def acting_user(request: HttpRequest) -> User:
    """The signed-in user an admin view acts for (`admin_view` turns anonymous requests away before they get here)."""
    return cast("User", request.user)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: it goes into the history and the audit trail.",
    )


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


def confirm_with_reason(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    objects: Sequence[Model],
    *,
    title: str,
    submit_label: str,
    apply: Callable[[Any, dict[str, Any]], object],
    form_class: type[forms.Form] = ReasonForm,
    initial: dict[str, Any] | None = None,
    action: str | None = None,
    form_kwargs: dict[str, Any] | None = None,
    details: str = "",
) -> HttpResponse | None:
    """The page that asks for a reason before a service runs on each object; None once it has run.

    Serves both an admin action (its page posts back to the change list with the action and the selection) and a
    per-object tool (it posts back to itself). A service that refuses one object (ValidationError, Conflict,
    PermissionDenied) leaves the others to proceed, and each refusal is shown. `details` (HTML) is shown above the
    form: the evidence to decide on, such as a version's figures before it is promoted.
    """
    form = form_class(
        request.POST if request.POST.get("post") == "yes" else None, initial=initial, **(form_kwargs or {})
    )
    if form.is_bound and form.is_valid():
        done = []
        for obj in objects:
            try:
                apply(obj, form.cleaned_data)
            except (ValidationError, Conflict, PermissionDenied) as exc:
                model_admin.message_user(request, f"{obj}: {_error_text(exc)}", messages.ERROR)
            else:
                done.append(str(obj))
        if done:
            model_admin.message_user(request, f"{submit_label}: {', '.join(done)}.", messages.SUCCESS)
        return None
    opts = model_admin.opts
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "objects": objects,
        "form": form,
        "submit_label": submit_label,
        "details": details,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "cancel_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "media": model_admin.media + form.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/hitl/confirm_with_reason.html", context)


def with_page_first(
    app_list: list[Any], *, app_label: str, app_name: str, page_name: str, object_name: str, url: str
) -> list[Any]:
    """`app_list` (the admin index's and sidebar's), with a page that is not a model admin listed first in its
    app (the reviewer's "My queues", the metrics dashboard). Someone who sees no model of that app gets the app
    too, holding only the page."""
    entry = {
        "name": page_name,
        "object_name": object_name,
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }
    app = next((app for app in app_list if app["app_label"] == app_label), None)
    if app is None:
        app = {"name": app_name, "app_label": app_label, "app_url": url, "has_module_perms": True, "models": []}
        app_list = sorted([*app_list, app], key=lambda listed: listed["name"].lower())
    app["models"].insert(0, entry)
    return app_list


class RefreshWhileRunningMixin(_AdminBase):
    """A list of background jobs (label exports, training runs) that reloads itself every `refresh_seconds` while
    one of them is still on its way, so its progress moves without a click, and stops once all have ended.

    The admin says which rows are on their way (`running_filter`, a lookup on its own queryset, which is already
    narrowed to what the user may see) and uses the template below, or one extending it."""

    change_list_template = "admin/hitl/change_list_refreshing.html"
    refresh_seconds = 3
    running_filter: dict[str, Any] = {}

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        running = self.get_queryset(request).filter(**self.running_filter).exists()
        refresh = self.refresh_seconds if running else 0
        return super().changelist_view(request, {**(extra_context or {}), "refresh_seconds": refresh})
