from rest_framework.routers import DefaultRouter

from governance.api.views import CategoryViewSet, ModelVersionViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("categories", CategoryViewSet, basename="category")
router.register("model-versions", ModelVersionViewSet, basename="model-version")

urlpatterns = router.urls
