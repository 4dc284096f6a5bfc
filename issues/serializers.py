"""Input and output serializers, kept apart. Inputs validate; services write; outputs render."""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .models import MAX_ID, Comment, Issue, IssueEvent, Label, Priority, Status

User = get_user_model()

MAX_VERSION = 2**31 - 1  # the version column is a 4-byte integer
MAX_DESCRIPTION = 100_000
MAX_LABELS_PER_ISSUE = 100


def encodable_text(value: str) -> None:
    """Reject text the database cannot store (lone surrogates from JSON ``\\ud800`` escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DjangoValidationError("Text contains characters that are not valid Unicode.") from exc


class TextField(serializers.CharField):
    """A CharField (trimmed, NUL bytes rejected) that also rejects text that is not valid Unicode."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(encodable_text)


def label_name_valid(value: str) -> None:
    if "," in value or ";" in value:
        raise DjangoValidationError("Label names may not contain ',' or ';'.")


class LabelNameField(TextField):
    """A label name: trimmed, 1–50 characters, without ``,`` or ``;``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)
        self.validators.append(label_name_valid)


class UserIdField(serializers.PrimaryKeyRelatedField):
    """A user id: an integer (or a string of digits); floats, booleans and out-of-range ids are rejected."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str):
            if not data.isdigit() or len(data) > 19:
                self.fail("incorrect_type", data_type="str")
            data = int(data)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class StrictInputSerializer(serializers.Serializer):
    """Rejects keys that are not writable fields of this serializer, naming each one."""

    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for key in data:
                if key in writable:
                    continue
                if key in self.read_only_names:
                    errors[key] = ["This field is read-only."]
                else:
                    errors[str(key)] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


ISSUE_READ_ONLY = ("id", "reporter", "version", "created_at", "updated_at", "resolved_at", "comments", "comment_count")


class IssueCreateInputSerializer(StrictInputSerializer):
    read_only_names = ISSUE_READ_ONLY

    title = TextField(max_length=255)
    description = TextField(max_length=MAX_DESCRIPTION, allow_blank=True, required=False, trim_whitespace=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = UserIdField(queryset=User.objects.all(), allow_null=True, required=False, html_cutoff=50)
    labels = serializers.ListField(child=LabelNameField(), max_length=MAX_LABELS_PER_ISSUE, required=False)


class IssueUpdateInputSerializer(IssueCreateInputSerializer):
    """PATCH body: any of the create fields, plus ``version`` (required unless ``If-Match`` is sent)."""

    read_only_names = tuple(name for name in ISSUE_READ_ONLY if name != "version")

    title = TextField(max_length=255, required=False)
    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)


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

    labels = serializers.ListField(child=LabelRefField(), max_length=MAX_LABELS_PER_ISSUE)
    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class IssueSerializer(serializers.ModelSerializer):
    """An issue as the API shows it."""

    assignee = serializers.IntegerField(source="assignee_id", allow_null=True, read_only=True)
    reporter = serializers.IntegerField(source="reporter_id", allow_null=True, read_only=True)
    labels = serializers.SerializerMethodField()

    class Meta:
        model = Issue
        fields = [
            "id",
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
        return [label.name for label in issue.labels.all()]


class CommentSerializer(serializers.ModelSerializer):
    issue = serializers.IntegerField(source="issue_id", read_only=True)
    author = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Comment
        fields = ["id", "issue", "author", "body", "created_at"]
        read_only_fields = fields


class CommentInputSerializer(StrictInputSerializer):
    read_only_names = ("id", "issue", "author", "created_at")

    body = TextField(max_length=10_000)


class IssueDetailSerializer(IssueSerializer):
    """An issue with its first comments (oldest first) and its comment count."""

    comments = serializers.SerializerMethodField()
    comment_count = serializers.IntegerField(read_only=True)

    class Meta(IssueSerializer.Meta):
        fields = [*IssueSerializer.Meta.fields, "comments", "comment_count"]
        read_only_fields = fields

    def get_comments(self, issue: Issue) -> list[dict]:
        return CommentSerializer(self.context["comments"], many=True).data


class IssueEventSerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = IssueEvent
        fields = ["id", "type", "timestamp", "actor", "source", "details"]
        read_only_fields = fields


class ConflictSerializer(serializers.Serializer):
    """The body of a 409/412 answer: the issue as it is now."""

    detail = serializers.CharField()
    code = serializers.CharField()
    current_version = serializers.IntegerField()
    current = IssueSerializer()


class LabelSerializer(serializers.ModelSerializer):
    issue_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Label
        fields = ["id", "name", "color", "issue_count"]
        read_only_fields = fields


class LabelInputSerializer(StrictInputSerializer):
    read_only_names = ("id", "issue_count")

    name = LabelNameField()
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)


class LabelUpdateInputSerializer(LabelInputSerializer):
    name = LabelNameField(required=False)


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "full_name"]
        read_only_fields = fields

    def get_full_name(self, user: Any) -> str:
        return user.get_full_name()


class AuthTokenInputSerializer(StrictInputSerializer):
    username = TextField(max_length=150, trim_whitespace=False)
    password = TextField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
