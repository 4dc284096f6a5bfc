"""The reports: one function per report, each aggregated in the database in at most two queries.

Time is UTC throughout. A window is half-open, ``since <= t < until``; either end may be ``None`` (unbounded).
"Resolved" means what ``Issue.resolved_at`` says: the instant the issue last entered ``resolved``/``closed``
from an open state. It is kept while the issue stays done (so editing a closed issue changes nothing) and
cleared on reopening, so a reopened issue leaves the resolved figures until it is resolved again.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import NotSupportedError, connections
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    When,
    Window,
)
from django.db.models.functions import Cast, RowNumber, Trunc

from issues.filters import issues_with_all_labels
from issues.models import DONE_STATUSES, Issue

INTERVALS = ("day", "week", "month")
MEDIAN, P90 = 0.5, 0.9


class ResolutionSeconds(Func):
    """``resolved_at − created_at`` in seconds, as a double, exact to the microsecond on both databases.

    Built on Django's own datetime subtraction: an ``interval`` on PostgreSQL (read with ``EXTRACT(EPOCH …)``),
    integer microseconds on SQLite.
    """

    output_field = FloatField()

    def __init__(self, end: str = "resolved_at", start: str = "created_at") -> None:
        super().__init__(ExpressionWrapper(F(end) - F(start), output_field=DurationField()))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError("ResolutionSeconds supports PostgreSQL and SQLite.")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::double precision")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="(%(expressions)s / 1000000.0)")


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

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError("percentile_cont is a PostgreSQL aggregate; see report_latency for SQLite.")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # The fraction is the first placeholder of the statement, before the expression's and the filter's.
        sql, params = super().as_sql(compiler, connection, fraction="%s", **extra)
        return sql, (self.fraction, *params)


class GroupValue(Subquery):
    """A scalar subquery over already grouped columns: it adds nothing to GROUP BY, so the database
    evaluates it once per group after aggregating, rather than once per row before."""

    def get_group_by_cols(self) -> list:
        return []


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
    *,
    limit: int = 10,
    statuses: Sequence[str] = (),
    labels: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``limit`` users with the most assigned issues (``created_at`` in the window, any of ``statuses``,
    all of ``labels``), most first, ties by username. Unassigned issues never count. One query."""
    issues = Issue.objects.filter(assignee__isnull=False)
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
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    assignee: int | str | None = None,
    labels: Sequence[str] = (),
    priorities: Sequence[str] = (),
) -> QuerySet[Issue]:
    """Issues now ``resolved``/``closed`` whose ``resolved_at`` is in the window, with the other filters.
    ``assignee`` is a user id or ``"none"`` (unassigned)."""
    issues = Issue.objects.filter(status__in=list(DONE_STATUSES), resolved_at__isnull=False)
    issues = _in_window(issues, "resolved_at", since, until)
    if assignee == "none":
        issues = issues.filter(assignee__isnull=True)
    elif assignee is not None:
        issues = issues.filter(assignee_id=assignee)
    if priorities:
        issues = issues.filter(priority__in=list(priorities))
    return _with_labels(issues, labels).order_by()


def _percentile_position(fraction: float, count: int) -> tuple[int, float]:
    """The 0-based row below ``fraction`` of ``count`` sorted rows and the weight of the row above it,
    in the same double arithmetic as PostgreSQL's ``percentile_cont``."""
    position = fraction * (count - 1)
    lower = math.floor(position)
    return lower, position - lower


def _lerp(low: float, high: float | None, weight: float) -> float:
    """PostgreSQL's interpolation between two neighbouring rows: ``low + (high − low) × weight``."""
    if high is None or weight == 0:
        return low
    return low + (high - low) * weight


def report_latency(**filters: Any) -> LatencyReport:
    """Count, mean, median and 90th percentile of resolution times (filters as ``resolved_issues``). One query.

    PostgreSQL computes the percentiles with ``percentile_cont``. SQLite has no percentile aggregate, so the
    same number comes from a window query: each row gets its rank (``ROW_NUMBER``) and the row count
    (``COUNT(*) OVER ()``), the outer aggregate picks the two rows around each percentile, and the final
    interpolation between those two values is PostgreSQL's formula, so both databases give identical results.
    """
    issues = resolved_issues(**filters).annotate(seconds=ResolutionSeconds())
    vendor = connections[issues.db].vendor
    if vendor == "postgresql":
        row = issues.aggregate(
            count=Count("*"),
            mean=Avg("seconds"),
            median=PercentileCont("seconds", MEDIAN),
            p90=PercentileCont("seconds", P90),
        )
        return LatencyReport(row["count"], row["mean"], row["median"], row["p90"])
    if vendor != "sqlite":
        raise NotSupportedError(f"report_latency supports PostgreSQL and SQLite, not {vendor}.")
    return _latency_by_window(issues)


def _latency_by_window(issues: QuerySet[Issue]) -> LatencyReport:
    ranked = issues.annotate(
        rank=Window(RowNumber(), order_by=[F("seconds").asc(), F("pk").asc()]),  # 1-based
        total=Window(Count("*")),
    )

    def row_at(fraction: float, offset: int) -> Max:
        """The value of the row ``floor(fraction × (total − 1)) + offset`` (0-based) of the sorted rows."""
        lower = Cast(fraction * (F("total") - 1), IntegerField())  # CAST truncates: floor, as positions are >= 0
        return Max(Case(When(rank=lower + offset + 1, then=F("seconds")), output_field=FloatField()))

    row = ranked.aggregate(
        count=Count("*"),
        mean=Avg("seconds"),
        median_low=row_at(MEDIAN, 0),
        median_high=row_at(MEDIAN, 1),
        p90_low=row_at(P90, 0),
        p90_high=row_at(P90, 1),
    )
    count = row["count"]
    if not count:
        return LatencyReport(0, None, None, None)
    median = _lerp(row["median_low"], row["median_high"], _percentile_position(MEDIAN, count)[1])
    p90 = _lerp(row["p90_low"], row["p90_high"], _percentile_position(P90, count)[1])
    return LatencyReport(count, row["mean"], median, p90)


# --- throughput --------------------------------------------------------------------------------------------


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


def report_throughput(*, interval: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Issues created and issues resolved (``resolved_at``, see the module docstring) per day, week (from
    Monday) or month in ``[since, until)``, oldest first; every period of the window is listed, idle ones
    with zeros. Two queries, one per count."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    created = _counts_by_period(_in_window(Issue.objects.all(), "created_at", since, until), "created_at", interval)
    done = Issue.objects.filter(status__in=list(DONE_STATUSES))
    resolved = _counts_by_period(_in_window(done, "resolved_at", since, until), "resolved_at", interval)
    result = []
    for start in periods(interval, since, until):
        day = start.date()
        result.append({"period": day, "created": created.get(day, 0), "resolved": resolved.get(day, 0)})
    return result
