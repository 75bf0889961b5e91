from rest_framework.routers import DefaultRouter

from cases.api.views import AuditEventViewSet, CaseViewSet, QueueViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("cases", CaseViewSet, basename="case")
router.register("queues", QueueViewSet, basename="queue")
router.register("audit", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
