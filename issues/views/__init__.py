"""DRF viewsets of the tracker, by capability: parse the request, call one service or selector, serialize the
answer. Domain errors are answered by api.exceptions, not caught here."""

from .issues import IssueViewSet
from .labels import LabelViewSet
from .projects import ProjectMemberViewSet, ProjectViewSet
from .users import UserViewSet

__all__ = ["IssueViewSet", "LabelViewSet", "ProjectMemberViewSet", "ProjectViewSet", "UserViewSet"]
