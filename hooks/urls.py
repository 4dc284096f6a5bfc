"""Routes of ``/api/projects/{key}/webhooks`` (and their deliveries); each answers with and without a trailing
slash. They sit below ``projects/{key}/``, where the projects' own routes end, so none collides."""

from issues.urls import OptionalSlashRouter
from issues.views.projects import PROJECT_KEY_REGEX

from .views import DeliveryViewSet, WebhookViewSet

WEBHOOKS_PREFIX = rf"projects/(?P<project_key>{PROJECT_KEY_REGEX})/webhooks"

router = OptionalSlashRouter()
router.register(WEBHOOKS_PREFIX, WebhookViewSet, basename="webhook")
router.register(rf"{WEBHOOKS_PREFIX}/(?P<webhook_id>[0-9]+)/deliveries", DeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls
