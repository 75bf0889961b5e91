from rest_framework.routers import DefaultRouter

from metrics.api.views import CategoryMetricsViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("metrics", CategoryMetricsViewSet, basename="category-metrics")

urlpatterns = router.urls
