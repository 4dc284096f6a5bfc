"""The issue list's everyday filters read without the FilterSet: ``project``, ``status``, ``priority`` and
``assignee`` (and ``page``, ``page_size``), nothing else. Such a list is counted from the kept facet counts and its
first pages are read by one prepared statement (``selectors.issue_facet_page``); building and validating the
FilterSet's form cost more than both statements (docs/performance.md, "Filtered lists").

``facets_from_params`` accepts only what it can read exactly as the FilterSet reads it and returns None for anything
else (another parameter, a value the FilterSet would refuse, too many values): the list then goes through the
FilterSet, which answers every 400 itself. So both paths select the same issues (tests/issues/test_facet_list.py
compares them on a generated sample)."""

from typing import Any

from django.http import QueryDict

from .filters import FILTER_MAX_VALUES, project_ids_param
from .models import Priority, Status
from .params import distinct_values, parse_id_or_none, split_values
from .search import NONE, Facets

FACET_LIST_PARAMS = frozenset({"project", "status", "priority", "assignee", "page", "page_size"})
_CHOICES = {"status": frozenset(Status.values), "priority": frozenset(Priority.values)}


def _choices(params: QueryDict, name: str) -> list[str]:
    """The parameter's distinct values ([] when not given or empty: the FilterSet ignores it). Raises
    ``ValueError`` when the FilterSet would refuse them."""
    values = distinct_values(split_values(params.getlist(name)))
    if len(values) > FILTER_MAX_VALUES[name] or not all(value in _CHOICES[name] for value in values):
        raise ValueError(name)
    return values


def facets_from_params(request: Any) -> Facets | None:
    """The ``Facets`` the list's parameters ask for when they are only the everyday filters, with valid values;
    None otherwise (the FilterSet reads them). ``project`` keys are resolved against the caller's projects (a 400
    naming ``project`` for an unknown or invisible one, the FilterSet's own answer)."""
    params = request.query_params
    if not params.keys() <= FACET_LIST_PARAMS:
        return None
    assignees: list[int | None] | None = None
    raw = (params.get("assignee") or "").strip()  # the last value, as a form's CharField reads it
    try:
        statuses, priorities = _choices(params, "status"), _choices(params, "priority")
        if raw:
            user = parse_id_or_none(raw)
            assignees = [None if user == NONE else int(user)]
    except ValueError:
        return None
    keys = split_values(params.getlist("project"))
    return Facets(
        project_ids=project_ids_param(request, keys) if keys else None,
        statuses=statuses or None,
        priorities=priorities or None,
        assignees=assignees,
    )
