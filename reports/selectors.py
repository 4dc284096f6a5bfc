"""The reports: one function per report, each aggregated in the database in at most two queries.

Every report counts only the issues of the projects the caller can see (``issues.selectors.scope`` over the
caller's ``issues.access.Access``), narrowed to some of them when ``projects`` (ids the caller was found to see)
is given: the scope is one array parameter, so a report costs the same number of queries for any caller.

Time is UTC throughout. A window is half-open, ``since <= t < until``; either end may be ``None`` (unbounded).
"Resolved" means what ``Issue.resolved_at`` says: the instant the issue last entered ``resolved``/``closed``
from an open state. It is kept while the issue stays done (so editing a closed issue changes nothing) and
cleared on reopening, so a reopened issue leaves the resolved figures until it is resolved again.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Trunc

from issues.access import Access
from issues.filters import issues_with_all_labels
from issues.models import DONE_STATUSES, Issue
from issues.selectors import scope

INTERVALS = ("day", "week", "month")
MEDIAN, P90 = 0.5, 0.9


class ResolutionSeconds(Func):
    """``resolved_at − created_at`` in seconds, as a double, exact to the microsecond: Django's own datetime
    subtraction gives an ``interval``, read with ``EXTRACT(EPOCH …)``."""

    output_field = FloatField()

    def __init__(self, end: str = "resolved_at", start: str = "created_at") -> None:
        super().__init__(ExpressionWrapper(F(end) - F(start), output_field=DurationField()))

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``:
    the value at ``fraction`` of the sorted inputs, interpolated linearly between the two nearest rows."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        self.fraction = float(fraction)
        super().__init__(expression, **extra)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        # The fraction is the first placeholder of the statement, before the expression's and the filter's.
        sql, params = super().as_sql(
            compiler, connection, function=function, template=template, arg_joiner=arg_joiner, fraction="%s", **extra
        )
        return sql, (self.fraction, *params)


class GroupValue(Subquery):
    """A scalar subquery over already grouped columns: it adds nothing to GROUP BY, so the database
    evaluates it once per group after aggregating, rather than once per row before."""

    def get_group_by_cols(self) -> list:
        return []


def visible_issues(access: Access, projects: Sequence[int] | None = None) -> QuerySet[Issue]:
    """The issues of the projects the caller can see, of ``projects`` only when given (ids already checked
    visible, as ``issues.access.resolve_project_keys`` gives them)."""
    issues = scope(Issue.objects.all(), access)
    if projects is not None:
        issues = issues.filter(project_id__any=list(projects))
    return issues


def _with_labels(issues: QuerySet[Issue], labels: Iterable[str]) -> QuerySet[Issue]:
    """Issues carrying every one of ``labels`` (names ignore case), exactly as the issue list's ``label`` filter
    (``issues.filters.issues_with_all_labels``: one semi-join for one name, one grouped subquery for several)."""
    return issues_with_all_labels(issues, labels)


def _in_window(issues: QuerySet[Issue], field: str, since: datetime | None, until: datetime | None) -> QuerySet[Issue]:
    if since is not None:
        issues = issues.filter(**{f"{field}__gte": since})
    if until is not None:
        issues = issues.filter(**{f"{field}__lt": until})
    return issues


# --- top assignees -----------------------------------------------------------------------------------------


def report_top_assignees(
    access: Access,
    *,
    projects: Sequence[int] | None = None,
    limit: int = 10,
    statuses: Sequence[str] = (),
    labels: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``limit`` users with the most assigned issues (``created_at`` in the window, any of ``statuses``,
    all of ``labels``), most first, ties by username, over the issues the caller can see (of ``projects``).
    Unassigned issues never count. One query."""
    issues = visible_issues(access, projects).filter(assignee__isnull=False)
    if statuses:
        issues = issues.filter(status__in=list(statuses))
    issues = _with_labels(_in_window(issues, "created_at", since, until), labels)
    # Count per assignee first, then look up the usernames of the groups: grouping by the assignee alone lets
    # PostgreSQL aggregate straight off an index, where a join before the aggregate would visit every row twice.
    username = get_user_model().objects.filter(pk=OuterRef("assignee_id")).values("username")
    rows = (
        issues.values("assignee_id")
        .annotate(issue_count=Count("*"), username=GroupValue(username))
        .order_by("-issue_count", "username", "assignee_id")[:limit]
    )
    return [
        {"assignee": row["assignee_id"], "username": row["username"], "issue_count": row["issue_count"]} for row in rows
    ]


# --- latency -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyReport:
    """Resolution time (``resolved_at − created_at``) of the resolved issues, in seconds; ``None`` when none."""

    resolved_count: int
    average_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None


def resolved_issues(
    access: Access,
    *,
    projects: Sequence[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    assignee: int | Literal["none"] | None = None,
    labels: Sequence[str] = (),
    priorities: Sequence[str] = (),
) -> QuerySet[Issue]:
    """Issues the caller can see (of ``projects``), now ``resolved``/``closed``, whose ``resolved_at`` is in the
    window, with the other filters. ``assignee`` is a user id or ``"none"`` (unassigned)."""
    issues = visible_issues(access, projects).filter(status__in=list(DONE_STATUSES), resolved_at__isnull=False)
    issues = _in_window(issues, "resolved_at", since, until)
    if assignee == "none":
        issues = issues.filter(assignee__isnull=True)
    elif assignee is not None:
        issues = issues.filter(assignee_id=assignee)
    if priorities:
        issues = issues.filter(priority__in=list(priorities))
    return _with_labels(issues, labels).order_by()


def report_latency(access: Access, **filters: Any) -> LatencyReport:
    """Count, mean, median and 90th percentile of resolution times (filters as ``resolved_issues``). One query;
    the percentiles are PostgreSQL's ``percentile_cont``."""
    row = (
        resolved_issues(access, **filters)
        .annotate(seconds=ResolutionSeconds())
        .aggregate(
            count=Count("*"),
            mean=Avg("seconds"),
            median=PercentileCont("seconds", MEDIAN),
            p90=PercentileCont("seconds", P90),
        )
    )
    return LatencyReport(row["count"], row["mean"], row["median"], row["p90"])


def period_start(moment: datetime, interval: str) -> datetime:
    """The start (UTC midnight) of the day, ISO week (Monday) or month containing ``moment``."""
    moment = moment.astimezone(UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown interval {interval!r}")


def next_period(start: datetime, interval: str) -> datetime:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(weeks=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def periods(interval: str, since: datetime, until: datetime) -> list[datetime]:
    """The starts of every period that overlaps ``[since, until)``."""
    starts = []
    start = period_start(since, interval)
    while start < until:
        starts.append(start)
        try:
            start = next_period(start, interval)
        except (OverflowError, ValueError):  # past year 9999
            break
    return starts


def count_periods(interval: str, since: datetime, until: datetime) -> int:
    """How many periods ``periods`` would return, without listing them."""
    if until <= since:
        return 0
    first, last = period_start(since, interval), period_start(until - timedelta(microseconds=1), interval)
    if interval == "day":
        return (last - first).days + 1
    if interval == "week":
        return (last - first).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def _counts_by_period(issues: QuerySet[Issue], field: str, interval: str) -> dict[date, int]:
    rows = (
        issues.annotate(period=Trunc(field, interval, tzinfo=UTC))
        .values("period")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("period", "n")
    )
    return {period.astimezone(UTC).date(): n for period, n in rows}


def report_throughput(
    access: Access, *, interval: str, since: datetime, until: datetime, projects: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Issues created and issues resolved (``resolved_at``, see the module docstring) per day, week (from
    Monday) or month in ``[since, until)``, oldest first, over the issues the caller can see (of ``projects``);
    every period of the window is listed, idle ones with zeros. Two queries, one per count."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    issues = visible_issues(access, projects)
    created = _counts_by_period(_in_window(issues, "created_at", since, until), "created_at", interval)
    done = issues.filter(status__in=list(DONE_STATUSES))
    resolved = _counts_by_period(_in_window(done, "resolved_at", since, until), "resolved_at", interval)
    result = []
    for start in periods(interval, since, until):
        day = start.date()
        result.append({"period": day, "created": created.get(day, 0), "resolved": resolved.get(day, 0)})
    return result
