"""Issues, comments and timeline events: their inputs (validate) and outputs (render), kept apart."""

from collections.abc import Mapping
from datetime import UTC
from typing import Any, cast

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..limits import COMMENT_BODY_MAX, DESCRIPTION_MAX, LABELS_PER_ISSUE_MAX, TITLE_MAX, VERSION_MAX
from ..models import MAX_ID, Comment, Issue, IssueEvent, Priority, Status
from .fields import LabelNameField, ProjectKeyField, StrictInputSerializer, TextField, UserIdField

User = get_user_model()


ISSUE_READ_ONLY = (
    "id",
    "number",
    "key",
    "reporter",
    "version",
    "created_at",
    "updated_at",
    "resolved_at",
    "comments",
    "comment_count",
)


class IssueCreateInputSerializer(StrictInputSerializer):
    read_only_names: tuple[str, ...] = ISSUE_READ_ONLY

    project = ProjectKeyField(required=False, help_text="The project's key; the default project when omitted.")
    title = TextField(max_length=TITLE_MAX)
    description = TextField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False, trim_whitespace=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = UserIdField(queryset=User.objects.all(), allow_null=True, required=False, html_cutoff=50)
    labels = serializers.ListField(child=LabelNameField(), max_length=LABELS_PER_ISSUE_MAX, required=False)

    def to_representation(self, instance: Any) -> dict:
        """The writable state of an issue (the browsable API pre-fills its forms with it, version included)."""
        if not isinstance(instance, Issue):
            return super().to_representation(instance)
        state = {
            "title": instance.title,
            "description": instance.description,
            "status": instance.status,
            "priority": instance.priority,
            "assignee": instance.assignee_id,
            "labels": instance.label_names(),
            "version": instance.version,
        }
        return {name: value for name, value in state.items() if name in self.fields}

    def validate_assignee(self, user: Any) -> Any:
        """A deactivated user cannot be made an assignee (as GitHub does with suspended users)."""
        if user is not None and not user.is_active:
            raise serializers.ValidationError(f"User {user.pk} is deactivated and cannot be assigned.")
        return user


class IssueUpdateInputSerializer(IssueCreateInputSerializer):
    """PATCH body: any of the create fields but ``project`` (an issue stays in its project), plus ``version``
    (required unless ``If-Match`` is sent)."""

    read_only_names = (*(name for name in ISSUE_READ_ONLY if name != "version"), "project")
    project = None  # type: ignore[assignment]

    title = TextField(max_length=TITLE_MAX, required=False)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)

    def validate_assignee(self, user: Any) -> Any:
        """Also refuses a deactivated user, except the issue's current assignee sent back unchanged (a client
        that PATCHes the whole state it read, the browsable API's form): keeping an assignee is no assignment.
        Should the assignee change meanwhile, so does the version, and the PATCH is a conflict anyway."""
        if user is not None and not user.is_active and user.pk == self._current_assignee_id():
            return user
        return super().validate_assignee(user)

    def _current_assignee_id(self) -> int | None:
        """The assignee of the issue named in the request's path (the view's ``pk``), None when there is none."""
        request = self.context.get("request")
        parser_context = getattr(request, "parser_context", None) or {}
        issue_id = self.context.get("issue_id")
        if issue_id is None:
            raw = str(parser_context.get("kwargs", {}).get("pk", ""))
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= MAX_ID):
                return None
            issue_id = int(raw)
        return Issue.objects.filter(pk=issue_id).values_list("assignee_id", flat=True).first()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": 50},
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 50}}, "required": ["name"]},
        ]
    }
)
class LabelRefField(serializers.Field):
    """A label given as ``"bug"`` or ``{"name": "bug"}``."""

    default_error_messages = {"invalid": "Expected a label name or an object with only a 'name' key."}

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, Mapping):
            if set(data) != {"name"}:
                self.fail("invalid")
            data = data["name"]
        if not isinstance(data, str):
            self.fail("invalid")
        return LabelNameField().run_validation(data)


class LabelsReplaceInputSerializer(StrictInputSerializer):
    """``PUT /issues/{id}/labels``: ``{"labels": [...], "version": n}`` (a bare list is wrapped by the view)."""

    labels = serializers.ListField(child=LabelRefField(), max_length=LABELS_PER_ISSUE_MAX)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class IssueSerializer(serializers.ModelSerializer):
    """An issue as the API shows it."""

    project = serializers.CharField(source="project_key", read_only=True)
    key = serializers.CharField(read_only=True)
    assignee = serializers.IntegerField(source="assignee_id", allow_null=True, read_only=True)
    reporter = serializers.IntegerField(source="reporter_id", allow_null=True, read_only=True)
    labels = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
            "project",
            "number",
            "key",
            "title",
            "description",
            "status",
            "priority",
            "assignee",
            "reporter",
            "labels",
            "version",
            "created_at",
            "updated_at",
            "resolved_at",
        ]
        read_only_fields = fields

    def get_labels(self, issue: Issue) -> list[str]:
        return issue.label_names()

    def to_representation(self, issue: Issue) -> dict[str, Any]:
        """The declared fields, built directly: the list renders up to 100 of these per request, and
        field-by-field rendering cost several times more. tests/issues/test_serializers.py pins that the
        output equals DRF's generic rendering of the same fields."""
        project_key = issue.project_key
        return {
            "id": issue.pk,
            "project": project_key,
            "number": issue.number,
            "key": f"{project_key}-{issue.number}",
            "title": issue.title,
            "description": issue.description,
            "status": issue.status,
            "priority": issue.priority,
            "assignee": issue.assignee_id,
            "reporter": issue.reporter_id,
            "labels": issue.label_names(),
            "version": issue.version,
            "created_at": iso_datetime(issue.created_at),
            "updated_at": iso_datetime(issue.updated_at),
            "resolved_at": iso_datetime(issue.resolved_at),
        }


def iso_datetime(value: Any) -> str | None:
    """A datetime as DRF renders it with ``DATETIME_FORMAT = "iso-8601"`` in UTC: ``…Z``."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def user_ref(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "username": user.username}


class CommentSerializer(serializers.ModelSerializer):
    issue = serializers.IntegerField(source="issue_id", read_only=True)
    author = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Comment
        fields = ["id", "issue", "author", "body", "created_at"]
        read_only_fields = fields

    def to_representation(self, comment: Comment) -> dict[str, Any]:
        """Built directly, like IssueSerializer's (the detail shows up to 100 comments)."""
        return {
            "id": comment.pk,
            "issue": comment.issue_id,
            "author": user_ref(comment.author),
            "body": comment.body,
            "created_at": iso_datetime(comment.created_at),
        }


class CommentInputSerializer(StrictInputSerializer):
    read_only_names = ("id", "issue", "author", "created_at")

    body = TextField(max_length=COMMENT_BODY_MAX)


class IssueDetailSerializer(IssueSerializer):
    """An issue with its first comments (oldest first) and its comment count."""

    comments = serializers.SerializerMethodField()
    comment_count = serializers.IntegerField(read_only=True)

    class Meta(IssueSerializer.Meta):
        fields = [*IssueSerializer.Meta.fields, "comments", "comment_count"]
        read_only_fields = fields

    def get_comments(self, issue: Issue) -> list[dict]:
        # issue_detail sets first_comments and annotates comment_count (the type checker knows neither).
        comments = issue.first_comments  # type: ignore[attr-defined]
        return cast("list[dict]", CommentSerializer(comments, many=True).data)  # a ReturnList

    def to_representation(self, issue: Issue) -> dict[str, Any]:
        data = super().to_representation(issue)
        data["comments"] = self.get_comments(issue)
        data["comment_count"] = issue.comment_count  # type: ignore[attr-defined]
        return data


class IssueEventSerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = IssueEvent
        fields = ["id", "type", "timestamp", "actor", "source", "details"]
        read_only_fields = fields

    def to_representation(self, event: IssueEvent) -> dict[str, Any]:
        """Built directly, like IssueSerializer's (a timeline page holds up to 100 events)."""
        return {
            "id": event.pk,
            "type": event.type,
            "timestamp": iso_datetime(event.timestamp),
            "actor": user_ref(event.actor),
            "source": event.source,
            "details": event.details,
        }


class ConflictSerializer(serializers.Serializer):
    """The body of a 409/412 answer: the issue as it is now."""

    detail = serializers.CharField()
    code = serializers.CharField()
    current_version = serializers.IntegerField()
    current = IssueSerializer()
