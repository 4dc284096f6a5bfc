"""Routes of ``/api/jobs``; each answers with and without a trailing slash."""

from issues.urls import OptionalSlashRouter

from .views import JobViewSet

router = OptionalSlashRouter()
router.register(r"jobs", JobViewSet, basename="job")

urlpatterns = router.urls
