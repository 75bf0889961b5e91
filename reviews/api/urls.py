from django.urls import path
from rest_framework.routers import DefaultRouter

from reviews.api.views import CaseWorkViewSet, LabelExportView, QueueWorkViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# Verbs on the cases and queues of the cases app: /cases/{id}/claim/, /queues/{slug}/next/ ...
router.register("cases", CaseWorkViewSet, basename="case-work")
router.register("queues", QueueWorkViewSet, basename="queue-work")

urlpatterns = [path("labels/", LabelExportView.as_view(), name="label-export"), *router.urls]
