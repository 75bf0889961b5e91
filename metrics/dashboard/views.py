"""The dashboard page: pick a category and a window, read its figures; adopt an advisor row as the new policy.

Thin on purpose: what the page shows is `metrics.dashboard.selectors.dashboard`, what a row changes is
`metrics.services.advisor.adopt_threshold`. A category the user may not see is a 404 on every path here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from governance.admin_mixins import acting_user
from governance.exceptions import Conflict
from governance.models import Category
from metrics import kpis
from metrics.dashboard.selectors import dashboard
from metrics.services.advisor import adopt_threshold

TEMPLATE = "admin/metrics/dashboard.html"
# What a service may answer instead of doing the work: shown as a message, and nothing changed.
REFUSALS = (Conflict, PermissionDenied, ValidationError)


class AdoptForm(forms.Form):
    """One advisor row to adopt. The reason is optional here on purpose: the service refuses a missing one with
    its own words, so the page and any other caller say the same thing."""

    category = forms.SlugField()
    window = forms.ChoiceField(choices=[(name, name) for name in kpis.WINDOWS])
    threshold = forms.FloatField(min_value=0, max_value=1)
    reason = forms.CharField(required=False, max_length=2000)


def dashboard_url(category: Category | None = None, window: str | None = None, anchor: str = "") -> str:
    params = {key: value for key, value in (("category", category.slug if category else None), ("window", window))}
    query = urlencode({key: value for key, value in params.items() if value})
    return reverse("admin:metrics_dashboard") + (f"?{query}" if query else "") + (f"#{anchor}" if anchor else "")


def _seen(request: HttpRequest) -> dict[str, bool]:
    cache: dict[str, bool] = request.__dict__.setdefault("_hitl_dashboard", {})
    return cache


def sees_a_category(request: HttpRequest) -> bool:
    """Whether the user may see any category; once per request (the app list is built on every admin page, and
    the dashboard itself already knows)."""
    seen = _seen(request)
    if "sees" not in seen:
        seen["sees"] = Category.objects.visible_to(request.user).exists()
    return seen["sees"]


def _render(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    request.current_app = admin.site.name
    return TemplateResponse(request, TEMPLATE, {**admin.site.each_context(request), **context})


def _visible_or_404(categories: list[Category], slug: str) -> Category:
    category = next((c for c in categories if c.slug == slug), None)
    if category is None:
        raise Http404("No category matches the given query.")
    return category


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The dashboard of one visible category over one window (GET); adopting an advisor row (POST)."""
    user = acting_user(request)
    categories = list(Category.objects.visible_to(user).select_related("policy").order_by("slug"))
    _seen(request)["sees"] = bool(categories)
    if request.method == "POST":
        return _adopt(request, categories)
    slug = request.GET.get("category", "")
    if not slug and not categories:
        return _render(request, {"title": "Dashboard", "categories": [], "board": None})
    category = _visible_or_404(categories, slug) if slug else categories[0]
    name = request.GET.get("window") or kpis.DEFAULT_WINDOW
    try:
        window = kpis.Window.parse(window=name, now=None)
    except ValidationError as exc:
        messages.error(request, f"{' '.join(exc.messages)} Showing the last {kpis.DEFAULT_WINDOW}.")
        name, window = kpis.DEFAULT_WINDOW, kpis.Window.last(kpis.DEFAULT_WINDOW)
    board = dashboard(category, window, user=user)
    return _render(
        request,
        {
            "title": f"Dashboard: {category.name}",
            "categories": categories,
            "category": category,
            "windows": [(key, dashboard_url(category, key)) for key in kpis.WINDOWS],
            "window_name": name,
            "board": board,
            "min_known": kpis.ADVISOR_MIN_KNOWN,
        },
    )


def _adopt(request: HttpRequest, categories: list[Category]) -> HttpResponse:
    form = AdoptForm(request.POST)
    category = _visible_or_404(categories, request.POST.get("category", ""))
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
        messages.error(request, f"Nothing changed: {errors}")
        return HttpResponseRedirect(dashboard_url(category, request.POST.get("window") or None, "advisor"))
    data = form.cleaned_data
    try:
        policy = adopt_threshold(
            category=category,
            user=acting_user(request),
            threshold=data["threshold"],
            window=kpis.Window.last(data["window"]),
            reason=data["reason"],
        )
    except REFUSALS as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc) or "Not allowed."
        messages.error(request, f"Nothing changed: {text}")
    else:
        messages.success(
            request,
            f"Policy version {policy.version} of {category.slug}: the auto threshold is now "
            f"{policy.auto_threshold:.2f}. The reason is in the policy's history.",
        )
    return HttpResponseRedirect(dashboard_url(category, data["window"], "advisor"))
