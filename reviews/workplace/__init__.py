"""The reviewer's workplace in the admin: my queues, work lists, claim-next, batches and the review page.

The workplace is not a model admin: its pages are views the site adds to its URLs under /admin/reviews/work/, and
"My queues" joins the app list of the index and the sidebar for whoever works a queue. Both are defined here, where
the workplace lives, and called by the project's site (`hitl_project.admin_site.HitlAdminSite`), which owns the URLs
and the app list: reviews adds to the site without replacing any of its methods.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse

from governance.admin_mixins import with_page_first
from reviews.selectors import works_any_queue
from reviews.workplace.double import double_review_view, double_reviews_view
from reviews.workplace.queues import batch_view, claim_next_view, my_next_view, my_queues_view, work_list_view
from reviews.workplace.review import keep_view, leave_view, review_view


def work_urls(site: AdminSite) -> list[URLPattern]:
    """The workplace's pages, each wrapped by `site.admin_view`: signed-in staff only, CSRF, never cached."""
    view = site.admin_view
    return [
        path("reviews/work/", view(my_queues_view), name="reviews_work"),
        path("reviews/work/next/", view(my_next_view), name="reviews_work_my_next"),
        path("reviews/work/queue/<slug:slug>/", view(work_list_view), name="reviews_work_queue"),
        path("reviews/work/queue/<slug:slug>/next/", view(claim_next_view), name="reviews_work_next"),
        path("reviews/work/queue/<slug:slug>/batch/", view(batch_view), name="reviews_work_batch"),
        path("reviews/work/case/<int:pk>/", view(review_view), name="reviews_work_case"),
        path("reviews/work/case/<int:pk>/keep/", view(keep_view), name="reviews_work_case_keep"),
        path("reviews/work/case/<int:pk>/leave/", view(leave_view), name="reviews_work_case_leave"),
        path("reviews/work/double/", view(double_reviews_view), name="reviews_work_double"),
        path("reviews/work/double/<int:pk>/", view(double_review_view), name="reviews_work_double_task"),
    ]


def with_my_queues(app_list: list[Any], request: HttpRequest, *, app_label: str | None, site: AdminSite) -> list[Any]:
    """`app_list` (the site's own), with "My queues" first in Reviews for anyone who works a queue."""
    if app_label not in (None, "reviews") or not works_any_queue(request.user):
        return app_list
    url = reverse("admin:reviews_work", current_app=site.name)
    return with_page_first(
        app_list, app_label="reviews", app_name="Reviews", page_name="My queues", object_name="Work", url=url
    )


__all__ = ["with_my_queues", "work_urls"]
