"""Query-parameter serializers (each invalid value is a 400 naming its parameter) and response serializers."""

from datetime import datetime, timedelta
from typing import Any, Literal

from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from issues.access import Access, resolve_project_keys
from issues.filters import FILTER_MAX_VALUES, label_name_key
from issues.models import PROJECT_KEY_MAX, Priority, Status
from issues.params import (
    DATE_OR_DATETIME_ERROR,
    distinct_values,
    parse_id_or_none,
    parse_window_bound,
    split_values,
    too_many_values,
)

from . import selectors

MAX_LIMIT = 100
MAX_PERIODS = 1000  # a throughput window holds at most this many periods
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}  # throughput window when `since` is missing
MAX_PARAM_LENGTH = 100


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise serializers.ValidationError("Null characters are not allowed.")


@extend_schema_field({"type": "string", "example": "2026-01-31"})
class WindowBoundField(serializers.Field):
    """An ISO 8601 datetime (no offset = UTC) or a date. A date means the start of that day for ``since`` and
    the end of that day for ``until`` (``until=2026-01-31`` includes January 31); a datetime ``until`` is
    exclusive."""

    default_error_messages = {
        "invalid": DATE_OR_DATETIME_ERROR,
        "range": "Date out of range.",
    }

    def __init__(self, *, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str) or len(data) > MAX_PARAM_LENGTH:
            self.fail("invalid")
        _no_nul(data)
        try:
            return parse_window_bound(data, end=self.end)
        except ValueError:  # not a date, or well formed but impossible, such as 2026-02-30
            self.fail("invalid")
        except OverflowError:  # beyond year 9999 once moved to UTC or to the end of the day
            self.fail("range")

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class RepeatableField(serializers.ListField):
    """A parameter that may repeat and whose values may be comma lists: ``?status=open,closed&status=resolved``.

    Bounded as the issue list's filters are (``issues.filters.FILTER_MAX_VALUES``): duplicates are dropped
    (per ``distinct_key``), then more than ``max_values`` values is a 400 naming the parameter, before the
    values are validated one by one."""

    def __init__(self, *, max_values: int, distinct_key: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs["max_length"] = max_values  # the schema's maxItems; the check below answers first
        self.max_values = max_values
        self.distinct_key = distinct_key
        super().__init__(**kwargs)

    def get_value(self, dictionary: Any) -> Any:
        if self.field_name not in dictionary:
            return serializers.empty
        raw = dictionary.getlist(self.field_name) if hasattr(dictionary, "getlist") else [dictionary[self.field_name]]
        return split_values(raw)

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list):
            data = distinct_values(data, key=self.distinct_key)
            message = too_many_values(data, self.max_values)
            if message is not None:
                raise serializers.ValidationError(message, code="max_values")
        return super().to_internal_value(data)


class LabelNameParamField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)


class ProjectKeyParamField(serializers.CharField):
    """A project key, upper-cased (keys match ignoring case). Whether it names a project the caller can see is the
    serializer's question (``validate_project``), asked once for all the keys; one that cannot be a key is answered
    as the issue list's ``project`` filter answers it."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if len(value) > PROJECT_KEY_MAX:
            raise serializers.ValidationError(f"Unknown project '{value[:PROJECT_KEY_MAX]}…'.")
        return value


@extend_schema_field({"type": "string", "pattern": "^([0-9]+|none)$"})
class AssigneeParamField(serializers.Field):
    """A user id, or ``none`` for unassigned issues."""

    default_error_messages = {"invalid": "Enter a user id or 'none'."}

    def to_internal_value(self, data: Any) -> int | Literal["none"]:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return parse_id_or_none(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class ReportParamsSerializer(serializers.Serializer):
    """Reads query parameters; an empty value (``?since=``) counts as absent, unknown parameters are ignored.
    ``project`` (every report's) becomes the ids of the projects it names, all visible to the caller."""

    project = RepeatableField(
        child=ProjectKeyParamField(),
        max_values=FILTER_MAX_VALUES["project"],
        distinct_key=str.upper,
        help_text=(
            "Only issues of these projects (keys, repeatable or comma list). Without it, every project the caller "
            "can see. A key that names no project the caller can see is a 400."
        ),
    )

    @classmethod
    def from_query(cls, query: QueryDict, access: Access) -> dict[str, Any]:
        data = QueryDict(mutable=True)
        for key in query:
            values = [value for value in query.getlist(key) if value.strip()]
            if values:
                data.setlist(key, values)
        params = cls(data=data, context={"access": access})
        params.is_valid(raise_exception=True)
        return params.validated_data

    def validate_project(self, keys: list[str]) -> list[int] | None:
        """The ids of the projects named; an unknown key and one of a project the caller cannot see get the same
        message (``issues.access.resolve_project_keys``). None when no key is left (``?project=,``)."""
        if not keys:
            return None
        try:
            return resolve_project_keys(self.context["access"], keys)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class TopAssigneesParamsSerializer(ReportParamsSerializer):
    limit = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=f"How many assignees to return, 1–{MAX_LIMIT} (default 10); outside that range is a 400.",
    )
    status = RepeatableField(
        child=serializers.ChoiceField(choices=Status.choices),
        max_values=FILTER_MAX_VALUES["status"],
        help_text="Count only issues in these statuses (repeatable or comma list).",
    )
    label = RepeatableField(  # type: ignore[assignment]  # the parameter's name; Field.label is its caption
        child=LabelNameParamField(),
        max_values=FILTER_MAX_VALUES["label"],
        distinct_key=label_name_key,
        help_text=(
            "Count only issues carrying every one of these labels (repeatable or comma list; names ignore case; "
            f"at most {FILTER_MAX_VALUES['label']} distinct names)."
        ),
    )
    since = WindowBoundField(help_text="Issues created at or after this date/datetime (UTC unless an offset).")
    until = WindowBoundField(end=True, help_text="Issues created before this datetime, or up to the end of this date.")


class LatencyParamsSerializer(ReportParamsSerializer):
    since = WindowBoundField(help_text="Issues resolved at or after this date/datetime (UTC unless an offset).")
    until = WindowBoundField(end=True, help_text="Issues resolved before this datetime, or up to the end of this date.")
    assignee = AssigneeParamField(required=False, help_text="Only issues assigned to this user id, or `none`.")
    label = RepeatableField(  # type: ignore[assignment]  # the parameter's name; Field.label is its caption
        child=LabelNameParamField(),
        max_values=FILTER_MAX_VALUES["label"],
        distinct_key=label_name_key,
        help_text=(
            "Only issues carrying every one of these labels (repeatable or comma list; names ignore case; "
            f"at most {FILTER_MAX_VALUES['label']} distinct names)."
        ),
    )
    priority = RepeatableField(
        child=serializers.ChoiceField(choices=Priority.choices),
        max_values=FILTER_MAX_VALUES["priority"],
        help_text="Only issues of these priorities (repeatable or comma list).",
    )


class ThroughputParamsSerializer(ReportParamsSerializer):
    interval = serializers.ChoiceField(
        choices=[(name, name) for name in selectors.INTERVALS],
        required=False,
        default="week",
        help_text="Period length: `day`, `week` (ISO weeks, from Monday) or `month` (default `week`).",
    )
    since = WindowBoundField(
        help_text="Start of the window (default: 30 days, 12 weeks or 12 months back, whole periods, up to `until`)."
    )
    until = WindowBoundField(end=True, help_text="End of the window, exclusive for a datetime (default: now).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        interval = attrs["interval"]
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since")
        if since is None:
            try:
                since = selectors.period_start(until - timedelta(microseconds=1), interval)
                for _ in range(DEFAULT_PERIODS[interval] - 1):
                    since = selectors.period_start(since - timedelta(microseconds=1), interval)
            except (OverflowError, ValueError) as exc:
                raise serializers.ValidationError({"until": ["Date out of range for the default window."]}) from exc
        attrs = super().validate({**attrs, "since": since, "until": until})
        if selectors.count_periods(interval, since, until) > MAX_PERIODS:
            message = f"The window holds more than {MAX_PERIODS} {interval} periods; narrow it or use a longer one."
            raise serializers.ValidationError({"since": [message]})
        return attrs


class TopAssigneeSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(help_text="The user's id.")
    username = serializers.CharField()
    issue_count = serializers.IntegerField()


def seconds_as_clock(seconds: float) -> str:
    """``[D ]HH:MM:SS``, rounded to the second: 93784.4 → ``1 02:03:04``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days} {clock}" if days else clock


def _seconds(value: float | None) -> float | None:
    """Seconds rounded to the microsecond, the resolution of the stored timestamps."""
    return None if value is None else round(value, 6)


class LatencySerializer(serializers.Serializer):
    resolved_count = serializers.IntegerField()
    average_resolution_seconds = serializers.FloatField(allow_null=True)
    median_resolution_seconds = serializers.FloatField(allow_null=True)
    p90_resolution_seconds = serializers.FloatField(allow_null=True)
    average_resolution_time = serializers.CharField(allow_null=True, help_text='The average as "[D ]HH:MM:SS".')

    def to_representation(self, report: selectors.LatencyReport) -> dict[str, Any]:
        average = report.average_seconds
        return {
            "resolved_count": report.resolved_count,
            "average_resolution_seconds": _seconds(average),
            "median_resolution_seconds": _seconds(report.median_seconds),
            "p90_resolution_seconds": _seconds(report.p90_seconds),
            "average_resolution_time": None if average is None else seconds_as_clock(average),
        }


class ThroughputPeriodSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="First day of the period (UTC).")
    created = serializers.IntegerField()
    resolved = serializers.IntegerField()
