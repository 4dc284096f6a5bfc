"""Every read of the tracker that needs joins or filtering; each returns a queryset with its joins applied."""

import json
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet

from .fastpath.prepared import PreparedGet, PreparedRows
from .fastpath.subqueries import CommentCount, FirstCommentsJson, IssueTotal, LabelNamesJoined
from .models import LABEL_SEPARATOR, Comment, Issue, IssueEvent, IssueTally, Label

DETAIL_COMMENT_LIMIT = 100


def issue_list() -> QuerySet[Issue]:
    """Issues newest first, each with its label names joined in by a subquery (no extra query per page)."""
    return Issue.objects.annotate(label_names_joined=LabelNamesJoined(separator=LABEL_SEPARATOR)).order_by(
        "-created_at", "-id"
    )


def issue_total() -> int:
    """The number of issues, as the database triggers keep it (``IssueTally``): the same cost at any size."""
    return sum(IssueTally.objects.values_list("issues", flat=True))


def issue_page(issues: QuerySet[Issue], start: int, stop: int) -> QuerySet[Issue]:
    """``issues[start:stop]``, with the subquery columns (label names) computed for those rows only.

    A database computes a row's select list before OFFSET skips it, so ``?page=500`` of a plain slice ran the
    label subquery for all 10,000 rows before the page. Past the first page, the page's ids are picked by a
    subquery with OFFSET that selects nothing else, and the annotated rows are read for those ids alone.
    """
    if start == 0:
        return issues[:stop]
    return issues.filter(pk__in=issues.values("pk")[start:stop])[: stop - start]


def issue_list_page(start: int, stop: int) -> tuple[list[Issue], int] | None:
    """Rows ``start:stop`` of the whole list (``issue_list()``, no filter) and the number of issues, read together
    by one prepared statement: the statement of each page's bounds is compiled once per process, and the count
    is the triggers' tally, carried in every row. None when the page is empty (no row to carry the count)."""
    rows: list[Any] = _ISSUE_LIST_PAGES.rows(start, stop)
    if not rows:
        return None
    return rows, rows[0].issues_total


_ISSUE_LIST_PAGES = PreparedRows(
    lambda start, stop: issue_page(issue_list().annotate(issues_total=IssueTotal()), start, stop)
)


def issue_get(*, issue_id: int) -> Issue:
    """One issue with its label names. Raises ``Issue.DoesNotExist``."""
    return issue_list().get(pk=issue_id)


def issue_detail(*, issue_id: int) -> Issue:
    """One issue with its label names, ``comment_count`` and ``first_comments`` (the first
    DETAIL_COMMENT_LIMIT comments, oldest first, with their authors), in one query: the comments are
    aggregated into JSON by a subquery. Raises ``Issue.DoesNotExist``."""
    issue: Any = _ISSUE_DETAIL.get(issue_id)  # with attributes the type checker does not know: annotations and these
    issue.first_comments = [_comment_from_json(issue, row) for row in json.loads(issue.first_comments_json)]
    return issue


# The detail's one statement, compiled once and prepared per connection.
_ISSUE_DETAIL = PreparedGet(
    lambda issue_id: (
        issue_list()
        .annotate(comment_count=CommentCount(), first_comments_json=FirstCommentsJson(limit=DETAIL_COMMENT_LIMIT))
        .filter(pk=issue_id)
    )
)


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
    """An issue's comments, oldest first, with their authors."""
    return Comment.objects.filter(issue_id=issue_id).select_related("author").order_by("created_at", "id")


def issue_timeline(*, issue_id: int) -> QuerySet[IssueEvent]:
    """An issue's events, oldest first, with their actors."""
    return IssueEvent.objects.filter(issue_id=issue_id).select_related("actor").order_by("timestamp", "id")


def label_list() -> QuerySet[Label]:
    """Labels by name, each with the number of issues carrying it."""
    return Label.objects.annotate(issue_count=Count("issues")).order_by("name", "id")


def user_list(*, search: str | None = None) -> QuerySet:
    """Active users by username, optionally those whose username or name contains ``search``."""
    from django.db.models import Q

    users = get_user_model().objects.filter(is_active=True).order_by("username", "id")
    if search:
        users = users.filter(
            Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
        )
    return users
