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
    "TokenSerializer",
    "UserSerializer",
    "parse_bulk_status",
]
