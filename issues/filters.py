"""Filters of the issue list (also used by the CSV export). Invalid values are a 400 naming the parameter.

Every multi-valued parameter is bounded (docs/limits.md): its repeats and comma lists are read together,
duplicates dropped (label names ignoring case), and more distinct values than ``FILTER_MAX_VALUES`` allows
is a 400 ``{"<parameter>": ["At most N values are allowed."]}``, before any value reaches the database.
The reports (``reports/serializers.py``) read their parameters with the same caps.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import django_filters as filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Case, Count, Exists, IntegerField, OrderBy, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from .access import access_for, resolve_project_keys
from .fastpath.subqueries import DistinctLowerCount
from .models import MAX_ID, PRIORITY_RANK, PROJECT_KEY_MAX, Issue, Label, Priority, Status
from .params import distinct_values, parse_id_or_none, split_values, too_many_values

ORDERING_FIELDS = ("created_at", "updated_at", "priority", "id")

# The most distinct values one multi-valued query parameter may carry, on the list, the export and the
# reports: repeats and comma lists count together, after duplicates are dropped. One place for all of them.
MAX_ID_VALUES = 100  # a list of ids, users or project keys: one `IN (...)`, cheap, but not unbounded
FILTER_MAX_VALUES: dict[str, int] = {
    # All of them must match: each name is one more label whose carriers the statement reads (see
    # issues_with_all_labels); 20 is more than any real query needs.
    "label": 20,
    # Small enums: once duplicates are dropped no valid list is longer, so only nonsense reaches the cap.
    "status": len(Status.choices),  # 4
    "priority": len(Priority.choices),  # 4
    # Project keys: one array parameter, cheap, but not unbounded.
    "project": MAX_ID_VALUES,
}


def label_name_key(name: str) -> str:
    """What makes two label names the same name: case (as the unique index ``lower(name)`` says)."""
    return name.lower()


def issues_with_all_labels(issues: QuerySet, names: Iterable[str]) -> QuerySet:
    """Issues carrying every one of the labels ``names``, matched ignoring case as the unique index of label
    names (``lower(name)``) compares them.

    One name is one ``EXISTS`` (a semi-join that PostgreSQL runs along the list's order, so the first page stops
    early). Several names are one subquery, ``issue_id IN (SELECT issue_id FROM issue_labels WHERE label_id IN
    (the labels of those names) GROUP BY issue_id HAVING COUNT(*) = <number of names>)``: one relation for the
    planner whatever the number of labels, costing one pass over those labels' carriers. One ``EXISTS`` per
    label was faster for the list's pages on 100k issues, but each is one more join to order (past 12,
    PostgreSQL's genetic search) on estimates that multiply, and the export's cursor, planned for its first rows,
    picked a nested loop over every issue that took 7-18 s for 5-20 common labels, where the ``GROUP BY`` took
    0.3 s (docs/limits.md has the figures). ``COUNT(*)`` counts each name once because an issue carries a label at
    most once and names are unique ignoring case; an unknown name matches no label, so no issue has them all."""
    through = Issue.labels.through
    names = distinct_values(names, key=label_name_key)
    if not names:
        return issues
    labels = Label.objects.alias(lowered=Lower("name")).order_by().values("id")
    if len(names) == 1:
        carriers = through.objects.filter(label_id__in=labels.filter(lowered=Lower(Value(names[0]))))
        return issues.filter(Exists(carriers.filter(issue_id=OuterRef("pk"))))
    carriers = through.objects.filter(label_id__in=labels.filter(lowered__in=[Lower(Value(name)) for name in names]))
    per_issue = carriers.values("issue_id").annotate(carried=Count("*"))
    # The plugin does not see an annotation of a values() queryset: "Cannot resolve keyword 'carried'".
    carriers_of_all = per_issue.filter(carried=DistinctLowerCount(names)).values("issue_id")  # type: ignore[misc]
    return issues.filter(pk__in=carriers_of_all)


class CommaSeparatedMultipleWidget(forms.SelectMultiple):
    """Reads a repeatable parameter whose values may also be comma lists: ``?status=open,closed&status=resolved``."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str] | None:
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        return split_values(raw)


class BoundedValuesMixin:
    """A form field of a multi-valued parameter: drops duplicates (per ``distinct_key``), then refuses more than
    ``max_values`` values, before the values are validated one by one (so the work is bounded too)."""

    distinct_key: Callable[[str], str] | None = None

    def __init__(self, *args: Any, max_values: int, **kwargs: Any) -> None:
        self.max_values = max_values
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            value = distinct_values(value, key=self.distinct_key)
            message = too_many_values(value, self.max_values)
            if message is not None:
                raise forms.ValidationError(message, code="max_values")
        return super().clean(value)  # type: ignore[misc]


class BoundedMultipleChoiceField(BoundedValuesMixin, filters.MultipleChoiceFilter.field_class):
    pass


class BoundedMultipleChoiceFilter(filters.MultipleChoiceFilter):
    """Any of the given choices (repeatable or comma list), at most ``FILTER_MAX_VALUES[name]`` distinct ones."""

    field_class = BoundedMultipleChoiceField

    def __init__(self, *args: Any, max_values: int, **kwargs: Any) -> None:
        kwargs.setdefault("widget", CommaSeparatedMultipleWidget)
        # distinct=False: a column filter cannot duplicate rows, and DISTINCT would sort the whole match.
        kwargs.setdefault("distinct", False)
        super().__init__(*args, max_values=max_values, **kwargs)


class IdOrNoneField(forms.CharField):
    """A user id, or ``none`` for "no user"."""

    default_error_messages = {"invalid": "Enter a user id or 'none'."}

    def to_python(self, value: Any) -> int | str | None:  # type: ignore[override]  # CharField's, then an id
        value = super().to_python(value)
        if value in (None, ""):
            return None
        try:
            return parse_id_or_none(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class IdOrNoneFilter(filters.Filter):
    field_class = IdOrNoneField

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        if value is None:
            return qs
        if value == "none":
            return qs.filter(**{f"{self.field_name}__isnull": True})
        return qs.filter(**{str(self.field_name): value})


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that exists in UTC (``9999-12-31T23:59:59-23:00`` does not)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Date-time out of range.", code="invalid") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class IntegerFilter(filters.Filter):
    field_class = forms.IntegerField


class LabelNamesField(BoundedValuesMixin, forms.Field):
    """A list of label names (from CommaSeparatedMultipleWidget), without duplicates ignoring case."""

    distinct_key = staticmethod(label_name_key)

    def to_python(self, value: Any) -> list[str]:
        values = value or []
        validator = ProhibitNullCharactersValidator()
        for item in values:
            validator(item)
            if len(item) > 50:
                raise forms.ValidationError("Label names are at most 50 characters.", code="max_length")
        return list(values)


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": FILTER_MAX_VALUES["label"]}
)
class AllLabelsFilter(filters.Filter):
    """``?label=a&label=b``: issues carrying every one of the labels (names ignore case)."""

    field_class = LabelNamesField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", CommaSeparatedMultipleWidget)
        kwargs.setdefault("max_values", FILTER_MAX_VALUES["label"])
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        return issues_with_all_labels(qs, value or [])


class ProjectKeysField(BoundedValuesMixin, forms.Field):
    """Project keys (from CommaSeparatedMultipleWidget), upper-cased, without duplicates."""

    def to_python(self, value: Any) -> list[str]:
        values = [item.upper() for item in value or []]
        validator = ProhibitNullCharactersValidator()
        for item in values:
            validator(item)
            if len(item) > PROJECT_KEY_MAX:
                raise forms.ValidationError(f"Unknown project '{item[:PROJECT_KEY_MAX]}…'.", code="invalid")
        return values


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "maxLength": PROJECT_KEY_MAX}, "maxItems": MAX_ID_VALUES}
)
class ProjectsFilter(filters.Filter):
    """``?project=WEB,API``: issues of any of these projects, among those the caller can see. A key that is unknown
    or names a project the caller cannot see is a 400 naming it, the same for both."""

    field_class = ProjectKeysField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", CommaSeparatedMultipleWidget)
        kwargs.setdefault("max_values", FILTER_MAX_VALUES["project"])
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        request = self.parent.request  # type: ignore[attr-defined]  # set by the FilterSet that binds the filter
        return qs.filter(project_id__any=project_ids_param(request, value))


def project_ids_param(request: Any, keys: list[str]) -> list[int]:
    """The ids of the ``project`` parameter's keys for the caller of ``request``; a 400 naming ``project`` else.
    The keys are checked as the filter's form field checks them first (the cap, their length, NUL bytes), also when
    a view reads them before the FilterSet does (the list's kept count)."""
    try:
        keys = ProjectKeysField(max_values=FILTER_MAX_VALUES["project"]).clean(keys)
        return resolve_project_keys(access_for(request.user), keys)
    except forms.ValidationError as exc:
        raise ValidationError({"project": exc.messages}) from exc
    except ValueError as exc:
        raise ValidationError({"project": [str(exc)]}) from exc


class IssueOrderingFilter(filters.OrderingFilter):
    """Orders by the given fields, ``priority`` by severity (low < critical), always tie-broken by id."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        # A field named again (``id,-id,id``) changes nothing: the first mention wins, so at most one term per
        # field reaches ORDER BY, however long the comma list (repeats of ``ordering`` are not read: the last wins).
        value = distinct_values(value, key=lambda item: item.lstrip("-"))
        order: list[OrderBy | str] = []
        for item in value:
            descending = item.startswith("-")
            name = item.lstrip("-")
            if name == "priority":
                rank = Case(
                    *(When(priority=p, then=Value(r)) for p, r in PRIORITY_RANK.items()),
                    output_field=IntegerField(),
                )
                order.append(rank.desc() if descending else rank.asc())
            else:
                order.append(item)
        if not any(item.lstrip("-") == "id" for item in value):
            order.append("-id" if value[0].startswith("-") else "id")
        return qs.order_by(*order)


_FORM_CLASSES: dict[type, type[forms.Form]] = {}


class IssueFilterSet(filters.FilterSet):
    project = ProjectsFilter()
    status = BoundedMultipleChoiceFilter(choices=Status.choices, max_values=FILTER_MAX_VALUES["status"])
    priority = BoundedMultipleChoiceFilter(choices=Priority.choices, max_values=FILTER_MAX_VALUES["priority"])
    assignee = IdOrNoneFilter(field_name="assignee_id")
    reporter = IntegerFilter(field_name="reporter_id", min_value=1, max_value=MAX_ID)
    label = AllLabelsFilter()
    q = filters.CharFilter(method="filter_q", max_length=200)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    ordering = IssueOrderingFilter(fields=ORDERING_FIELDS)

    class Meta:
        model = Issue
        fields: list[str] = []

    def get_form_class(self) -> type[forms.Form]:
        """The validation form, built once per FilterSet class: no filter here depends on the request, and
        building the form's fields (labels included) cost more than the rest of the filtering."""
        cls = type(self)
        if cls not in _FORM_CLASSES:
            _FORM_CLASSES[cls] = super().get_form_class()
        return _FORM_CLASSES[cls]

    def filter_q(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        return qs.filter(Q(title__icontains=value) | Q(description__icontains=value))
