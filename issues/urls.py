"""Routes of /api/issues, /api/labels, /api/users and /api/projects; each answers with and without a trailing slash."""

from rest_framework.routers import SimpleRouter

from . import views
from .views.projects import MEMBERS_PREFIX


class OptionalSlashRouter(SimpleRouter):
    """Every route matches with and without its trailing slash, so no request is ever redirected."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("issues", views.IssueViewSet, basename="issue")
router.register("labels", views.LabelViewSet, basename="label")
router.register("users", views.UserViewSet, basename="user")
router.register("projects", views.ProjectViewSet, basename="project")
router.register(MEMBERS_PREFIX, views.ProjectMemberViewSet, basename="project-member")

urlpatterns = router.urls
