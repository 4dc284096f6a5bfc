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
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Case, Count, Exists, F, IntegerField, OrderBy, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from . import search_index
from .access import access_for, resolve_project_keys
from .fastpath.subqueries import DistinctLowerCount
from .models import MAX_ID, PRIORITY_RANK, PROJECT_KEY_MAX, SEARCH_CONFIG, Issue, Label, Priority, Status
from .params import distinct_values, parse_id_or_none, split_values, too_many_values
from .search import (
    MAX_QUERY_CHARS,
    NONE,
    NOTHING,
    Facets,
    Search,
    SearchError,
    Terms,
    facets_of,
    matches_nothing,
    merge_terms,
    parse_search,
)

# ``relevance``: how well the words of ``q`` match (ts_rank, the title above the description), best first.
ORDERING_FIELDS = ("created_at", "updated_at", "priority", "id", "relevance")
RANK = "search_rank"  # the alias ``SearchFilter`` gives the rank when the list is ordered by relevance
SEARCH_HELP = (
    'Words, "phrases", -word, a OR b, and qualifiers: status: priority: project: assignee: reporter: label:'
    " created: updated: resolved: (-status:closed, status:open,in_progress, assignee:me, created:>=2026-01-01)"
)
RELEVANCE_NEEDS_WORDS = "'relevance' ranks by the words of 'q': give some words to search for."

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
    names (``lower(name)``) compares them. One name is one ``EXISTS`` (a semi-join run along the list's order, so
    the first page stops early). Several names are one subquery, ``issue_id IN (SELECT issue_id FROM issue_labels
    WHERE label_id IN (the labels of those names) GROUP BY issue_id HAVING COUNT(*) = <number of names>)``: one
    relation for the planner. One ``EXISTS`` per label was faster for pages at 100k issues, but each is one more
    join to order on estimates that multiply, and the export's cursor picked a nested loop over every issue (7-18 s
    for 5-20 common labels; the ``GROUP BY`` 0.3 s, docs/limits.md). ``COUNT(*)`` counts each name once (an issue
    carries a label once; names are unique ignoring case); an unknown name matches no label, so no issue has all."""
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


def issues_without_labels(issues: QuerySet, names: Iterable[str]) -> QuerySet:
    """Issues carrying none of the labels ``names`` (``-label:``), matched ignoring case: one ``NOT EXISTS``."""
    labels = Label.objects.alias(lowered=Lower("name")).order_by().values("id")
    lowered = [Lower(Value(name)) for name in distinct_values(names, key=label_name_key)]
    carriers = Issue.labels.through.objects.filter(label_id__in=labels.filter(lowered__in=lowered))
    return issues.filter(~Exists(carriers.filter(issue_id=OuterRef("pk"))))


def users_condition(field_name: str, values: Iterable[int | str]) -> Q:
    """Any of the users ``values`` (ids, or ``"none"``: no user) in the column ``field_name``; one id is ``= id``."""
    values = list(values)
    ids = [value for value in values if value != NONE]
    condition = Q(**{f"{field_name}__in": ids}) if len(ids) > 1 else Q(**{field_name: ids[0]}) if ids else Q()
    if NONE in values:
        condition |= Q(**{f"{field_name}__isnull": True})
    return condition


class CommaSeparatedValues:
    """Reads a repeatable parameter whose values may also be comma lists: ``?status=open,closed&status=resolved``."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str] | None:
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        return split_values(raw)


class CommaSeparatedMultipleWidget(CommaSeparatedValues, forms.SelectMultiple):
    """A list of choices (shown as a multiple select in the browsable API's filter form)."""


class CommaSeparatedTextWidget(CommaSeparatedValues, forms.TextInput):
    """A list of values without choices to pick from (project keys, label names), shown as a text box: ``WEB,API``."""

    def format_value(self, value: Any) -> str | None:
        return ",".join(map(str, value)) if isinstance(value, list | tuple) else super().format_value(value)


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


class UsersFilter(filters.Filter):
    """Any of a list of users (ids, or ``"none"``: no user; ``q``'s qualifiers give several): the parameter itself
    is one value, given as a list of one by ``IssueFilterSet.filter_queryset``."""

    def filter(self, qs: QuerySet, value: list[int | str] | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(users_condition(str(self.field_name), value))


class IdOrNoneFilter(UsersFilter):
    field_class = IdOrNoneField


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


class UserIdFilter(UsersFilter):
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
        kwargs.setdefault("widget", CommaSeparatedTextWidget)
        kwargs.setdefault("label", "Labels (all of them)")
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
        kwargs.setdefault("widget", CommaSeparatedTextWidget)
        kwargs.setdefault("label", "Projects (keys)")
        kwargs.setdefault("max_values", FILTER_MAX_VALUES["project"])
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: list[int] | None) -> QuerySet:
        """``value``: the projects' ids (``IssueFilterSet.filter_queryset`` resolves the keys, ``q``'s with them)."""
        if value is None:
            return qs
        return qs.filter(project_id__any=value)


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
    """Orders by the given fields, ``priority`` by severity (low < critical), ``relevance`` best match first (the
    rank ``SearchFilter`` gives as ``RANK``), always tie-broken by id (newest first after ``relevance``)."""

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
            elif name == "relevance":
                order.append(F(RANK).asc() if descending else F(RANK).desc())
            else:
                order.append(item)
        if not any(item.lstrip("-") == "id" for item in value):
            first = value[0]
            newest_first = first.startswith("-") != (first.lstrip("-") == "relevance")
            order.append("-id" if newest_first else "id")
        return qs.order_by(*order)


class SearchField(forms.CharField):
    """``q``: at most ``MAX_QUERY_CHARS`` characters, no NUL, read by ``issues.search.parse_search`` (no query)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_QUERY_CHARS)
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> Search | None:  # the parsed search, not the text
        text = super().clean(value)
        if not text:
            return None
        try:
            return parse_search(text)
        except SearchError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


@extend_schema_field(
    {"type": "string", "maxLength": MAX_QUERY_CHARS, "description": SEARCH_HELP + " (docs/search.md)."}
)
class SearchFilter(filters.Filter):
    """``q`` (docs/search.md) as ``Terms``, its qualifiers already merged into the other filters' values
    (``IssueFilterSet.filter_queryset``): what no parameter says (words, exclusions, dates), and the rank."""

    field_class = SearchField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Search")
        kwargs.setdefault("help_text", SEARCH_HELP)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: Terms | None) -> QuerySet:
        if value is None:
            return qs
        # The words: a join on the documents' primary key, probed through their GIN index (the rank reuses it); while
        # some issues wait for their document (after an import), the matching documents' and queued issues' ids.
        query = SearchQuery(value.words, config=SEARCH_CONFIG, search_type="websearch")
        if value.word_filter:
            qs = search_index.issues_matching(qs, query) if value.queued else qs.filter(search__document=query)
        if value.labels_excluded:
            qs = issues_without_labels(qs, value.labels_excluded)
        if value.assignees_excluded:
            qs = qs.exclude(users_condition("assignee_id", value.assignees_excluded))
        if value.reporters_excluded:
            qs = qs.exclude(users_condition("reporter_id", value.reporters_excluded))
        for dates in value.dates:
            qs = qs.filter(dates.condition())
        if value.rank:
            # ts_rank with its default weights: a word in the title (A, 1.0) counts more than in the description
            # (B, 0.4).
            rank = search_index.rank(query) if value.queued else SearchRank(F("search__document"), query)
            qs = qs.alias(**{RANK: rank})
        return qs


_FORM_CLASSES: dict[type, type[forms.Form]] = {}


class IssueFilterSet(filters.FilterSet):
    project = ProjectsFilter()
    status = BoundedMultipleChoiceFilter(choices=Status.choices, max_values=FILTER_MAX_VALUES["status"])
    priority = BoundedMultipleChoiceFilter(choices=Priority.choices, max_values=FILTER_MAX_VALUES["priority"])
    assignee = IdOrNoneFilter(field_name="assignee_id")
    reporter = UserIdFilter(field_name="reporter_id", min_value=1, max_value=MAX_ID)
    label = AllLabelsFilter()
    q = SearchFilter()
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
            form_class = super().get_form_class()
            # The search box first in the browsable API's filter form: it is what a person types into.
            form_class.base_fields = {"q": form_class.base_fields.pop("q"), **form_class.base_fields}
            _FORM_CLASSES[cls] = form_class
        return _FORM_CLASSES[cls]

    # Once ``qs`` is built: what the kept facet counts can count (``search.facets_of``), or what counts it otherwise
    # than by COUNT(*) over the issues (``search_index.CountSource``); None when they cannot.
    facets: Facets | None = None
    counted_by: search_index.CountSource | None = None

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Each filter once, ``q``'s qualifiers merged into the parameters' values (``merge_terms``): one vocabulary."""
        values = dict(self.form.cleaned_data)
        search: Search | None = values.get("q")
        relevance = any(item.lstrip("-") == "relevance" for item in values.get("ordering") or [])
        if relevance and not (search is not None and search.words):
            raise ValidationError({"ordering": [RELEVANCE_NEEDS_WORDS]})
        keys = values.get("project")
        values["project"] = project_ids_param(self.request, keys) if keys else None
        try:
            terms = search.resolve(self.request) if search is not None else Terms()
        except SearchError as exc:
            raise ValidationError({"q": [str(exc)]}) from None
        terms.rank = relevance
        merged = merge_terms(values, terms)
        if matches_nothing(merged):  # e.g. ?status=open&q=status:closed
            self.facets = NOTHING
            return queryset.none()
        self.facets = facets_of(merged)
        by_documents = search_index.documents_matching(merged, self.request)
        if by_documents is not None:
            queryset, merged = by_documents.probe_labels(queryset, merged)
        for name, each in self.filters.items():  # in declaration order (the form shows ``q`` first)
            queryset = each.filter(queryset, merged[name])
        if by_documents is None:  # (words with what a document can apply too: counted and paged by the documents)
            self.counted_by = search_index.labels_counted(merged, self.request)  # labels alone: by their links
            return queryset
        queryset, self.counted_by = by_documents.counted(queryset, newest_first=not values.get("ordering"))
        return queryset
