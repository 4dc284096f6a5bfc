"""Every read of the tracker that needs joins or filtering; each returns a queryset with its joins applied.

Every read of issues, comments, events and labels is scoped here to the projects the caller can see
(``issues.access.Access``), so no view can forget it: an issue of a project the caller cannot see is simply not
found. Staff (``Access.everything``) read statements without the scope."""

import json
from datetime import datetime
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Func, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from .access import Access
from .fastpath.prepared import PreparedGet, PreparedRows
from .fastpath.subqueries import CommentCount, FirstCommentsJson, IssueTotal, LabelNamesJoined, ProjectKey
from .models import (
    LABEL_SEPARATOR,
    Comment,
    Issue,
    IssueEvent,
    IssueFacetTally,
    IssueStatusTally,
    IssueTally,
    Label,
    Membership,
    Project,
)
from .search import Facets

DETAIL_COMMENT_LIMIT = 100


def _issues_annotated() -> QuerySet[Issue]:
    return Issue.objects.annotate(
        project_key_value=ProjectKey(), label_names_joined=LabelNamesJoined(separator=LABEL_SEPARATOR)
    ).order_by("-created_at", "-id")


def scope(queryset: QuerySet, access: Access, field: str = "project_id") -> QuerySet:
    """``queryset`` narrowed to the projects the caller can see (``field`` names the project column)."""
    visible = access.visible_ids
    return queryset if visible is None else queryset.filter(**{f"{field}__any": visible})


def issue_list(access: Access) -> QuerySet[Issue]:
    """The issues the caller can see, newest first, each with its project's key and its label names joined in by
    subqueries (no extra query per page)."""
    return scope(_issues_annotated(), access)


def visible_projects(access: Access) -> QuerySet[Project]:
    """The projects the caller can see, by key."""
    return scope(Project.objects.all(), access, "id").order_by("key")


def project_members(project_id: int) -> QuerySet[Membership]:
    """The members of a project (active users), by username, with their users."""
    return (
        Membership.objects.filter(project_id=project_id, user__is_active=True)
        .select_related("user")
        .order_by("user__username", "user_id")
    )


def issue_total(access: Access, project_ids: list[int] | None = None) -> int:
    """The number of issues the caller can see (of ``project_ids`` only, when given: ids already checked visible),
    as the database triggers keep it per project (``IssueTally``): the same cost at any size."""
    tally = scope(IssueTally.objects.all(), access)
    if project_ids is not None:
        tally = tally.filter(project_id__any=project_ids)
    return sum(tally.values_list("issues", flat=True))


def issue_facet_total(access: Access, facets: Facets) -> int:
    """The number of issues the caller can see among those ``facets`` describes (any of its projects, statuses,
    priorities and assignees, none of its excluded assignees), summed from the counts the database triggers keep,
    in one statement whose rows do not grow with the issues or the users: with no assignee filter, the
    per-(project, status, priority) ``IssueStatusTally``; with assignees, the rows of those assignees in
    ``IssueFacetTally`` (its key leads with the assignee); with excluded assignees only, the former less the
    excluded assignees' rows of the latter. A dimension that allows nothing (an empty list), or assignees that are
    all excluded, is 0 without a query."""
    dimensions = (facets.project_ids, facets.statuses, facets.priorities, facets.assignees)
    if any(values is not None and not values for values in dimensions):
        return 0

    def narrowed(tally: QuerySet) -> QuerySet:
        return _by_project_status_priority(scope(tally, access), facets)

    # The tally's key holds "unassigned" as assignee 0 (a unique key cannot compare NULLs).
    excluded = [user_id or 0 for user_id in facets.assignees_excluded]
    if facets.assignees is not None:
        assignees = [user_id or 0 for user_id in facets.assignees if (user_id or 0) not in excluded]
        if not assignees:
            return 0
        by_assignee = narrowed(IssueFacetTally.objects.filter(assignee_id__any=assignees))
        return by_assignee.aggregate(total=Sum("issues", default=0))["total"]
    without_assignee = narrowed(IssueStatusTally.objects.all())
    if not excluded:
        return without_assignee.aggregate(total=Sum("issues", default=0))["total"]
    # SUM as a plain function: a scalar subquery, not an aggregate that would group the outer statement.
    of_excluded = narrowed(IssueFacetTally.objects.filter(assignee_id__any=excluded)).annotate(
        n=Func("issues", function="SUM")
    )
    total = Sum("issues", default=0) - Coalesce(Subquery(of_excluded.values("n")), 0)
    return without_assignee.aggregate(total=total)["total"]


def issue_page(issues: QuerySet[Issue], start: int, stop: int) -> QuerySet[Issue]:
    """``issues[start:stop]``, with the subquery columns (label names) computed for those rows only.

    A database computes a row's select list before OFFSET skips it, so ``?page=500`` of a plain slice ran the
    label subquery for all 10,000 rows before the page. Past the first page, the page's ids are picked by a
    subquery with OFFSET that selects nothing else, and the annotated rows are read for those ids alone.
    """
    if start == 0:
        return issues[:stop]
    return issues.filter(pk__in=issues.values("pk")[start:stop])[: stop - start]


def issue_list_page(access: Access, start: int, stop: int) -> tuple[list[Issue], int] | None:
    """Rows ``start:stop`` of the caller's whole list (``issue_list()``, no filter) and the number of issues in it,
    read together by one prepared statement: the statement of each page's bounds is compiled once per process
    (the caller's projects are its one array parameter), and the count is the triggers' tally, carried in every
    row. None when the page is empty (no row to carry the count)."""
    visible = access.visible_ids
    if visible is None:
        rows: list[Any] = _ISSUE_LIST_PAGES_ALL.rows(start, stop)
    else:
        rows = _ISSUE_LIST_PAGES.rows(start, stop, values=[visible])
    if not rows:
        return None
    return rows, rows[0].issues_total


_ISSUE_LIST_PAGES = PreparedRows(
    lambda start, stop, projects: issue_page(
        _issues_annotated().filter(project_id__any=[projects]).annotate(issues_total=IssueTotal([projects])),
        start,
        stop,
    ),
    arity=1,
)
_ISSUE_LIST_PAGES_ALL = PreparedRows(
    lambda start, stop: issue_page(_issues_annotated().annotate(issues_total=IssueTotal()), start, stop)
)


def issues_by_ids(access: Access, ids: list[int]) -> list[Issue]:
    """The issues of ``ids`` that the caller can see, newest first, as the list shows them: one prepared statement
    (a word search's first page, whose ids its documents picked: ``search_index.CountSource``)."""
    if not ids:
        return []
    visible = access.visible_ids
    if visible is None:
        return _ISSUES_BY_IDS_ALL.rows(values=[ids])
    return _ISSUES_BY_IDS.rows(values=[ids, visible])


_ISSUES_BY_IDS = PreparedRows(
    lambda ids, projects: _issues_annotated().filter(id__any=[ids], project_id__any=[projects]), keys=1, arity=2
)
_ISSUES_BY_IDS_ALL = PreparedRows(lambda ids: _issues_annotated().filter(id__any=[ids]), keys=1, arity=1)


def _by_project_status_priority(rows: QuerySet, facets: Facets) -> QuerySet:
    """Issues, or tally rows (the same column names), narrowed to ``facets``' projects, statuses and priorities."""
    if facets.project_ids is not None:
        rows = rows.filter(project_id__any=facets.project_ids)
    if facets.statuses is not None:
        rows = rows.filter(status__in=facets.statuses)
    if facets.priorities is not None:
        rows = rows.filter(priority__in=facets.priorities)
    return rows


def facet_filtered(issues: QuerySet[Issue], facets: Facets) -> QuerySet[Issue]:
    """``issues`` narrowed to ``facets`` (no exclusions: ``issues.facet_params`` reads none), as the FilterSet's
    filters narrow them for the same parameters."""
    issues = _by_project_status_priority(issues, facets)
    if facets.assignees is not None:
        ids = [user for user in facets.assignees if user is not None]
        condition = Q(assignee_id__any=ids) if ids else Q()
        if None in facets.assignees:
            condition |= Q(assignee_id__isnull=True)
        issues = issues.filter(condition)
    return issues


def issue_facet_page(access: Access, facets: Facets, start: int, stop: int) -> list[Issue]:
    """Rows ``start:stop`` of the caller's issues narrowed to ``facets``, newest first, by one prepared statement:
    compiled once per process for each page's bounds and each choice of statuses and priorities (small enums), with
    the caller's projects, the ``project`` ids and the assignee ids as its array parameters (one statement per
    shape: which of them there are, and whether "unassigned" is asked)."""
    visible = access.visible_ids
    assignee_ids = [user for user in facets.assignees or [] if user is not None]
    shape = (
        visible is not None,
        facets.project_ids is not None,
        bool(assignee_ids),
        facets.assignees is not None and None in facets.assignees,
    )
    prepared = _ISSUE_FACET_PAGES.get(shape)
    if prepared is None:
        prepared = _ISSUE_FACET_PAGES[shape] = PreparedRows(partial(_facet_page, shape), arity=sum(shape[:3]))
    statuses = None if facets.statuses is None else tuple(facets.statuses)
    priorities = None if facets.priorities is None else tuple(facets.priorities)
    values = [ids for ids, used in zip((visible, facets.project_ids, assignee_ids), shape, strict=False) if used]
    return prepared.rows(start, stop, statuses, priorities, values=values)


def _facet_page(
    shape: tuple[bool, bool, bool, bool],
    start: int,
    stop: int,
    statuses: tuple[str, ...] | None,
    priorities: tuple[str, ...] | None,
    *markers: int,
) -> QuerySet[Issue]:
    scoped, by_project, by_assignee_ids, unassigned = shape
    arrays = iter(markers)
    issues = _issues_annotated()
    if scoped:
        issues = issues.filter(project_id__any=[next(arrays)])
    if by_project:
        issues = issues.filter(project_id__any=[next(arrays)])
    issues = facet_filtered(
        issues,
        Facets(
            statuses=None if statuses is None else list(statuses),
            priorities=None if priorities is None else list(priorities),
        ),
    )
    if by_assignee_ids or unassigned:
        condition = Q(assignee_id__any=[next(arrays)]) if by_assignee_ids else Q()
        if unassigned:
            condition |= Q(assignee_id__isnull=True)
        issues = issues.filter(condition)
    return issue_page(issues, start, stop)


_ISSUE_FACET_PAGES: dict[tuple[bool, bool, bool, bool], PreparedRows[Issue]] = {}


def issue_get(access: Access, *, issue_id: int) -> Issue:
    """One issue the caller can see, with its label names. Raises ``Issue.DoesNotExist``."""
    return issue_list(access).get(pk=issue_id)


def issue_id_by_key(access: Access, key: str) -> int:
    """The id of the issue ``KEY-number`` (key ignoring case) among those the caller can see. Raises
    ``Issue.DoesNotExist`` (also for a key that is not one)."""
    project_key, _, number = key.strip().upper().rpartition("-")
    if not (number.isascii() and number.isdigit() and len(number) <= 18 and project_key):
        raise Issue.DoesNotExist(key)
    found = scope(Issue.objects.filter(project__key=project_key, number=int(number)), access)
    issue_id = found.values_list("pk", flat=True).first()
    if issue_id is None:
        raise Issue.DoesNotExist(key)
    return issue_id


def issue_detail(access: Access, *, issue_id: int) -> Issue:
    """One issue the caller can see, with its label names, ``comment_count`` and ``first_comments`` (the first
    DETAIL_COMMENT_LIMIT comments, oldest first, with their authors), in one query: the comments are
    aggregated into JSON by a subquery. Raises ``Issue.DoesNotExist``."""
    visible = access.visible_ids
    # with attributes the type checker does not know: annotations and these
    issue: Any = _ISSUE_DETAIL_ALL.get(issue_id) if visible is None else _ISSUE_DETAIL.get(issue_id, visible)
    issue.first_comments = [_comment_from_json(issue, row) for row in json.loads(issue.first_comments_json)]
    return issue


def _detail(issues: QuerySet[Issue], issue_id: int) -> QuerySet[Issue]:
    return issues.annotate(
        comment_count=CommentCount(), first_comments_json=FirstCommentsJson(limit=DETAIL_COMMENT_LIMIT)
    ).filter(pk=issue_id)


# The detail's one statement, compiled once and prepared per connection (with the scope, and for staff without).
_ISSUE_DETAIL = PreparedGet(
    lambda issue_id, projects: _detail(_issues_annotated().filter(project_id__any=[projects]), issue_id), arity=2
)
_ISSUE_DETAIL_ALL = PreparedGet(lambda issue_id: _detail(_issues_annotated(), issue_id))


def issue_project_id(access: Access, *, issue_id: int) -> int:
    """The project of an issue the caller can see. Raises ``Issue.DoesNotExist``."""
    project_id = scope(Issue.objects.filter(pk=issue_id), access).values_list("project_id", flat=True).first()
    if project_id is None:
        raise Issue.DoesNotExist(issue_id)
    return project_id


def _comment_from_json(issue: Issue, row: dict[str, Any]) -> Comment:
    comment = Comment(
        id=row["id"],
        issue_id=issue.pk,
        author_id=row["author_id"],
        body=row["body"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
    if row["author_id"] is not None:
        comment.author = get_user_model()(id=row["author_id"], username=row["username"])
    return comment


def issue_comments(*, issue_id: int) -> QuerySet[Comment]:
    """An issue's comments, oldest first, with their authors (for an issue already found through the scope)."""
    return Comment.objects.filter(issue_id=issue_id).select_related("author").order_by("created_at", "id")


def issue_timeline(*, issue_id: int) -> QuerySet[IssueEvent]:
    """An issue's events, oldest first, with their actors (for an issue already found through the scope)."""
    return IssueEvent.objects.filter(issue_id=issue_id).select_related("actor").order_by("timestamp", "id")


def label_list(access: Access) -> QuerySet[Label]:
    """The labels of the projects the caller can see, by name, each with its project's key and the number of issues
    carrying it."""
    return (
        scope(Label.objects.all(), access)
        .annotate(issue_count=Count("issues"), project_key=F("project__key"))
        .order_by("name", "id")
    )


def user_list(*, search: str | None = None) -> QuerySet:
    """Active users by username, optionally those whose username or name contains ``search``."""
    from django.db.models import Q

    users = get_user_model().objects.filter(is_active=True).order_by("username", "id")
    if search:
        users = users.filter(
            Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
        )
    return users
