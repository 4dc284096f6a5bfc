"""Input and output serializers, kept apart. Inputs validate; services write; outputs render."""

from .accounts import AuthTokenInputSerializer, TokenSerializer, UserSerializer
from .bulk import parse_bulk_status
from .issues import (
    CommentInputSerializer,
    CommentSerializer,
    ConflictSerializer,
    IssueCreateInputSerializer,
    IssueDetailSerializer,
    IssueEventSerializer,
    IssueSerializer,
    IssueUpdateInputSerializer,
    LabelsReplaceInputSerializer,
)
from .labels import LabelInputSerializer, LabelSerializer, LabelUpdateInputSerializer
from .projects import (
    MembershipInputSerializer,
    MembershipSerializer,
    ProjectCreateInputSerializer,
    ProjectSerializer,
    ProjectUpdateInputSerializer,
)

__all__ = [
    "AuthTokenInputSerializer",
    "CommentInputSerializer",
    "CommentSerializer",
    "ConflictSerializer",
    "IssueCreateInputSerializer",
    "IssueDetailSerializer",
    "IssueEventSerializer",
    "IssueSerializer",
    "IssueUpdateInputSerializer",
    "LabelInputSerializer",
    "LabelSerializer",
    "LabelUpdateInputSerializer",
    "LabelsReplaceInputSerializer",
    "MembershipInputSerializer",
    "MembershipSerializer",
    "ProjectCreateInputSerializer",
    "ProjectSerializer",
    "ProjectUpdateInputSerializer",
    "TokenSerializer",
    "UserSerializer",
    "parse_bulk_status",
]
