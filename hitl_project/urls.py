"""URL wiring: the admin, API v1 (one router per app), the OpenAPI schema and its offline docs."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth.decorators import user_passes_test
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django_rq.urls import get_admin_urlpatterns
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from governance.api.plumbing import api_not_found

# A 500 under /api/ is JSON like every other API answer (the admin keeps Django's page).
handler500 = "governance.api.plumbing.server_error"


def superusers_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """The RQ dashboard shows every job's arguments and can empty queues: superusers only, not every staff user."""
    return user_passes_test(lambda user: user.is_active and user.is_superuser, login_url="admin:login")(view)


# Only the dashboard's pages, each behind `superusers_only`; not its token-authenticated stats endpoints.
rq_urlpatterns = (get_admin_urlpatterns(view_wrapper=superusers_only), "django_rq")

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/", include("cases.api.urls")),
    path("api/v1/", include("reviews.api.urls")),
    path("api/v1/", include("metrics.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("django-rq/", include(rq_urlpatterns)),
    # Anything else under /api/ is a JSON 404, like every other API answer.
    re_path(r"^api/", api_not_found),
]
