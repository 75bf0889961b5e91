from __future__ import annotations

from django.urls import path

from floor.views import BulkCreateView, CaseCreateView, ReadyView

urlpatterns = [
    path("floor/cases/", CaseCreateView.as_view()),
    path("floor/cases/bulk/", BulkCreateView.as_view()),
    path("floor/ready/", ReadyView.as_view()),
]
