"""Filters of the issue list (also used by the CSV export). Invalid values are a 400 naming the parameter."""

from datetime import UTC, datetime
from typing import Any

import django_filters as filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from .models import MAX_ID, PRIORITY_RANK, Issue, Priority, Status

ORDERING_FIELDS = ("created_at", "updated_at", "priority", "id")


class CommaSeparatedMultipleWidget(forms.SelectMultiple):
    """Reads a repeatable parameter whose values may also be comma lists: ``?status=open,closed&status=resolved``."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str] | None:
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


class IdOrNoneField(forms.CharField):
    """A user id, or ``none`` for "no user"."""

    default_error_messages = {"invalid": "Enter a user id or 'none'."}

    def to_python(self, value: Any) -> int | str | None:
        value = super().to_python(value)
        if value in (None, ""):
            return None
        if value.lower() == "none":
            return "none"
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(value)


class IdOrNoneFilter(filters.Filter):
    field_class = IdOrNoneField

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        if value is None:
            return qs
        if value == "none":
            return qs.filter(**{f"{self.field_name}__isnull": True})
        return qs.filter(**{self.field_name: value})


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


class LabelNamesField(forms.Field):
    """A list of label names (from CommaSeparatedMultipleWidget)."""

    def to_python(self, value: Any) -> list[str]:
        values = value or []
        validator = ProhibitNullCharactersValidator()
        for item in values:
            validator(item)
            if len(item) > 50:
                raise forms.ValidationError("Label names are at most 50 characters.", code="max_length")
        return list(values)


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": 50}})
class AllLabelsFilter(filters.Filter):
    """``?label=a&label=b``: issues carrying every one of the labels (names ignore case)."""

    field_class = LabelNamesField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", CommaSeparatedMultipleWidget)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        through = Issue.labels.through
        for name in value or []:
            qs = qs.filter(Exists(through.objects.filter(issue_id=OuterRef("pk"), label__name__iexact=name)))
        return qs


class IssueOrderingFilter(filters.OrderingFilter):
    """Orders by the given fields, ``priority`` by severity (low < critical), always tie-broken by id."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        order = []
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
    # distinct=False: a column filter cannot duplicate rows, and DISTINCT would sort the whole match.
    status = filters.MultipleChoiceFilter(choices=Status.choices, widget=CommaSeparatedMultipleWidget, distinct=False)
    priority = filters.MultipleChoiceFilter(
        choices=Priority.choices, widget=CommaSeparatedMultipleWidget, distinct=False
    )
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
