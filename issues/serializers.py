"""Input and output serializers, kept apart. Inputs validate; services write; outputs render."""

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import MAX_ID, Comment, Issue, IssueEvent, Label, Priority, Status, validate_label_name
from .services import BulkItem

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

    def to_internal_value(self, data: Any) -> str:
        # DRF's CharField turns numbers into text ({"title": 1e999} would become "inf"); JSON text is a string.
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LabelNameField(TextField):
    """A label name: trimmed, 1–50 characters, without ``,`` or ``;``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)
        self.validators.append(validate_label_name)


class UserIdField(serializers.PrimaryKeyRelatedField):
    """A user id: an integer (or a string of digits); floats, booleans and out-of-range ids are rejected."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str):
            if not (data.isascii() and data.isdigit()) or len(data) > 19:
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
    """PATCH body: any of the create fields, plus ``version`` (required unless ``If-Match`` is sent)."""

    read_only_names = tuple(name for name in ISSUE_READ_ONLY if name != "version")

    title = TextField(max_length=255, required=False)
    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)

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
        raw = str(parser_context.get("kwargs", {}).get("pk", ""))
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= MAX_ID):
            return None
        return Issue.objects.filter(pk=int(raw)).values_list("assignee_id", flat=True).first()


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
        return issue.label_names()

    def to_representation(self, issue: Issue) -> dict[str, Any]:
        """The declared fields, built directly: the list renders up to 100 of these per request, and
        field-by-field rendering cost several times more. tests/issues/test_serializers.py pins that the
        output equals DRF's generic rendering of the same fields."""
        return {
            "id": issue.pk,
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

    body = TextField(max_length=10_000)


class IssueDetailSerializer(IssueSerializer):
    """An issue with its first comments (oldest first) and its comment count."""

    comments = serializers.SerializerMethodField()
    comment_count = serializers.IntegerField(read_only=True)

    class Meta(IssueSerializer.Meta):
        fields = [*IssueSerializer.Meta.fields, "comments", "comment_count"]
        read_only_fields = fields

    def get_comments(self, issue: Issue) -> list[dict]:
        return CommentSerializer(issue.first_comments, many=True).data

    def to_representation(self, issue: Issue) -> dict[str, Any]:
        data = super().to_representation(issue)
        data["comments"] = self.get_comments(issue)
        data["comment_count"] = issue.comment_count
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


# --- Bulk status (issue 3) -----------------------------------------------------------------------------
# Plain Python rather than a serializer per item: a bulk of 1,000 items is validated in about a millisecond.

BULK_ITEM_KEYS = frozenset({"id", "status", "version"})
BULK_BODY_KEYS = frozenset({"ids", "status"})
STATUS_VALUES = frozenset(Status.values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bulk_item(index: int, raw: Any) -> BulkItem:
    if type(raw) is dict:  # fast path: a well-formed item (JSON gives plain dict, int and str)
        issue_id, status, version = raw.get("id"), raw.get("status"), raw.get("version")
        if (
            type(issue_id) is int
            and 1 <= issue_id <= MAX_ID
            and type(status) is str
            and status in STATUS_VALUES
            and (version is None or (type(version) is int and 1 <= version <= MAX_VERSION))
            and raw.keys() <= BULK_ITEM_KEYS
        ):
            return BulkItem(index, issue_id, status, version, {})
    if not isinstance(raw, Mapping):
        return BulkItem(
            index=index,
            id=None,
            status=None,
            errors={"non_field_errors": ['Expected an object {"id", "status", "version"}.']},
        )
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in BULK_ITEM_KEYS:
            errors[str(key)] = ["Unknown field."]
    issue_id = raw.get("id")
    if "id" not in raw:
        errors["id"] = ["This field is required."]
    elif not _is_int(issue_id):
        errors["id"] = ["A valid integer is required."]
    elif not 1 <= issue_id <= MAX_ID:
        errors["id"] = [f"No issue has id {issue_id}."]
    status = raw.get("status")
    if "status" not in raw:
        errors["status"] = ["This field is required."]
    elif not isinstance(status, str) or status not in STATUS_VALUES:
        errors["status"] = [f'"{status}" is not a valid choice.' if isinstance(status, str) else "Not a valid string."]
    version = raw.get("version")
    if version is not None and (not _is_int(version) or not 1 <= version <= MAX_VERSION):
        errors["version"] = [f"A valid integer between 1 and {MAX_VERSION} is required."]
        version = None
    return BulkItem(index=index, id=issue_id, status=status, version=version, errors=errors)


def parse_bulk_status(data: Any, *, max_items: int) -> list[BulkItem]:
    """The items of a bulk status body: ``[{"id", "status", "version"?}, ...]`` or ``{"ids": [...], "status"}``.

    Per-item problems (wrong type, bad status, duplicate id) are recorded on each item, for the service to
    report together with unknown ids. A body of the wrong shape, empty, or longer than ``max_items`` raises
    a ValidationError.
    """
    if isinstance(data, Mapping):
        unknown = {str(key): ["Unknown field."] for key in data if key not in BULK_BODY_KEYS}
        missing = {key: ["This field is required."] for key in sorted(BULK_BODY_KEYS) if key not in data}
        if unknown or missing:
            raise serializers.ValidationError({**unknown, **missing})
        if not isinstance(data["ids"], list):
            raise serializers.ValidationError({"ids": ["Expected a list of issue ids."]})
        raw_items: list[Any] = [{"id": issue_id, "status": data["status"]} for issue_id in data["ids"]]
    elif isinstance(data, list):
        raw_items = data
    else:
        raise serializers.ValidationError(
            {"non_field_errors": ['Expected a list of {"id", "status", "version"} or {"ids": [...], "status": ...}.']}
        )
    if not raw_items:
        raise serializers.ValidationError({"non_field_errors": ["Send at least one item."]})
    if len(raw_items) > max_items:
        raise serializers.ValidationError(
            {"non_field_errors": [f"At most {max_items} items per request; got {len(raw_items)}."]},
            code="too_many_items",
        )
    items = [_bulk_item(index, raw) for index, raw in enumerate(raw_items)]
    first_index: dict[int, int] = {}
    for item in items:
        if "id" in item.errors:
            continue
        if item.id in first_index:
            item.errors["id"] = [f"Duplicate id: issue {item.id} is already item {first_index[item.id]}."]
        else:
            first_index[item.id] = item.index
    return items
