"""Benchmark of the reports on PostgreSQL: each report through the ORM (selector, and the whole view) against
the same question asked in hand-written SQL, on the same data, in the same run. Target: ORM ≤ 1.5 × SQL.

Run by hand (not part of the test suite):

    .venv/bin/python bench/bench_reports.py                 # 1,000,000 issues in it_reports_bench
    .venv/bin/python bench/bench_reports.py --issues 100000 --runs 3 --explain

The scratch database (``--db``, default ``it_reports_bench`` on 127.0.0.1:5432, user postgres; or the whole URL
in BENCH_DATABASE_URL) is created and migrated if missing, and seeded set-based (INSERT … SELECT
generate_series) unless it already holds exactly ``--issues`` issues. Timings are wall-clock seconds in this
process, so both sides include the round trip; each figure is the median of ``--runs`` runs after a warm-up.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_END = datetime(2026, 1, 1, tzinfo=UTC)  # issues are created over the two years before this instant
SEED_DAYS = 730
USERS = 200
LABELS = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=1_000_000)
    parser.add_argument("--db", default="it_reports_bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reseed", action="store_true", help="seed again even if the row count matches")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of both sides of each case")
    return parser.parse_args()


def setup_django(db_name: str) -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{db_name}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import dj_database_url
    import psycopg

    params = dj_database_url.parse(url)
    admin = psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"] or "postgres",
        password=params["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [params["NAME"]]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{params["NAME"]}"')
            print(f"created database {params['NAME']}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return params["NAME"]


SEED_SQL = [
    "TRUNCATE issues_issue, issues_issue_labels, issues_issueevent, issues_comment, issues_label RESTART IDENTITY "
    "CASCADE",
    "DELETE FROM auth_user WHERE username LIKE 'bench-%%'",
    # 200 users; usernames sort differently from ids so the tie-break by username is exercised.
    """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                              date_joined)
       SELECT '!', false, 'bench-' || md5(g::text), '', '', '', false, true, now()
       FROM generate_series(1, %(users)s) g""",
    """INSERT INTO issues_label (project_id, name, color, created_at)
       SELECT (SELECT id FROM issues_project WHERE key = %(project)s),
              CASE WHEN g = 1 THEN 'bug' ELSE 'label-' || g END, '#cccccc', now()
       FROM generate_series(1, %(labels)s) g""",
    # Statuses: 25 %% open, 15 %% in progress, 25 %% resolved, 35 %% closed. Resolution times are log-uniform
    # between 1 minute and about 60 days, so the mean sits far above the median, as in real trackers.
    # Assignees: 10 %% unassigned, the rest skewed towards the first users (squared uniform).
    # Everything in the default project; numbers come from its sequence (the insert trigger, ENABLE ALWAYS).
    """INSERT INTO issues_issue (project_id, title, description, status, priority, assignee_id, reporter_id, version,
                                 created_at, updated_at, resolved_at)
       SELECT (SELECT id FROM issues_project WHERE key = %(project)s), 'Issue ' || r.g, '', r.status,
              (ARRAY['low','medium','medium','high','critical'])[1 + (r.g * 7) %% 5],
              CASE WHEN r.a < 0.1 THEN NULL ELSE u.first_id + floor(r.b * r.b * %(users)s)::int END,
              u.first_id + r.g %% %(users)s, 1, r.created_at,
              r.created_at + CASE WHEN r.done THEN r.duration ELSE interval '0' END,
              CASE WHEN r.done THEN r.created_at + r.duration END
       FROM (SELECT g, a, b, status, status IN ('resolved', 'closed') AS done,
                    %(end)s::timestamptz - %(days)s * interval '1 day'
                      + (g::float8 / %(issues)s) * %(days)s * interval '1 day' AS created_at,
                    make_interval(secs => 60 * power(86400.0, du)) AS duration
             FROM (SELECT g, random() AS a, random() AS b, random() AS du,
                          CASE WHEN st < 0.25 THEN 'open' WHEN st < 0.40 THEN 'in_progress'
                               WHEN st < 0.65 THEN 'resolved' ELSE 'closed' END AS status
                   FROM (SELECT g, random() AS st FROM generate_series(1, %(issues)s) g) s) t) r
       CROSS JOIN (SELECT min(id) AS first_id FROM auth_user WHERE username LIKE 'bench-%%') u""",
    # Labels: 60 %% of issues carry one, a quarter a second one; 'bug' (id 1) is on about 6 %% of issues.
    """INSERT INTO issues_issue_labels (issue_id, label_id)
       SELECT id, 1 + id %% %(labels)s FROM issues_issue WHERE id %% 5 < 3""",
    """INSERT INTO issues_issue_labels (issue_id, label_id)
       SELECT id, 1 + (id / %(labels)s) %% %(labels)s FROM issues_issue WHERE id %% 4 = 0
       ON CONFLICT DO NOTHING""",
]


def seed(issues: int, reseed: bool) -> None:
    from django.db import connection, transaction

    from issues.access import default_project_key

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM issues_issue")
        current = cursor.fetchone()[0]
        if current == issues and not reseed:
            print(f"reusing {current:,} issues")
            return
        started = time.perf_counter()
        params: dict[str, Any] = {
            "users": USERS,
            "labels": LABELS,
            "issues": issues,
            "end": SEED_END,
            "days": SEED_DAYS,
            "project": default_project_key(),
        }
        with transaction.atomic():
            # The rows are consistent by construction: skip the per-row foreign-key triggers (a superuser
            # setting, local to this transaction), which would otherwise cost more than the inserts.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SELECT setseed(0.42)")
            for sql in SEED_SQL:
                cursor.execute(sql, params)
    seeded = time.perf_counter() - started
    connection.close()  # VACUUM cannot run in the transaction Django may hold
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE issues_issue")
        cursor.execute("VACUUM ANALYZE issues_issue_labels")
        cursor.execute("ANALYZE auth_user")
        cursor.execute("ANALYZE issues_label")
    print(
        f"seeded {issues:,} issues in {seeded:.1f} s (+ {time.perf_counter() - started - seeded:.1f} s VACUUM ANALYZE)"
    )


def measure(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()  # warm-up: caches, plan, and the result to compare
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def sql_runner(sql: str, params: dict[str, Any]) -> Callable[[], list[tuple]]:
    from django.db import connection

    def run() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


def explain(sql: str, params: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        for (line,) in cursor.fetchall():
            print("      " + line)


# --- the questions, in hand-written SQL ---------------------------------------------------------------------

TOP_SQL = """
SELECT c.assignee_id, u.username, c.n
FROM (SELECT assignee_id, count(*) AS n FROM issues_issue
      WHERE assignee_id IS NOT NULL {where} GROUP BY assignee_id) c
JOIN auth_user u ON u.id = c.assignee_id
ORDER BY c.n DESC, u.username, c.assignee_id
LIMIT %(limit)s"""

LATENCY_SQL = """
SELECT count(*), avg(s), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY s)
FROM (SELECT extract(epoch FROM resolved_at - created_at)::float8 AS s
      FROM issues_issue
      WHERE status IN ('resolved', 'closed') AND resolved_at IS NOT NULL {where}) t"""

THROUGHPUT_SQL = """
WITH periods AS (
  SELECT generate_series(date_trunc(%(interval)s, %(since)s AT TIME ZONE 'UTC'),
                         %(until)s AT TIME ZONE 'UTC' - interval '1 microsecond',
                         ('1 ' || %(interval)s)::interval) AS period),
created AS (
  SELECT date_trunc(%(interval)s, created_at AT TIME ZONE 'UTC') AS period, count(*) AS n
  FROM issues_issue WHERE created_at >= %(since)s AND created_at < %(until)s GROUP BY 1),
resolved AS (
  SELECT date_trunc(%(interval)s, resolved_at AT TIME ZONE 'UTC') AS period, count(*) AS n
  FROM issues_issue WHERE status IN ('resolved', 'closed') AND resolved_at >= %(since)s AND resolved_at < %(until)s
  GROUP BY 1)
SELECT p.period::date, coalesce(c.n, 0), coalesce(r.n, 0)
FROM periods p LEFT JOIN created c USING (period) LEFT JOIN resolved r USING (period)
ORDER BY 1"""

BUG_FILTER = """AND EXISTS (SELECT 1 FROM issues_issue_labels il JOIN issues_label l ON l.id = il.label_id
                 WHERE il.issue_id = issues_issue.id AND lower(l.name) = 'bug')"""


def cases() -> list[dict[str, Any]]:
    """Each case: a name, the view's query string, the selector call, and the SQL with its parameters."""
    from issues.access import SYSTEM
    from reports import selectors

    year_ago = SEED_END - timedelta(days=365)
    quarter_ago = SEED_END - timedelta(days=90)
    start = SEED_END - timedelta(days=SEED_DAYS)
    return [
        {
            "name": "top-assignees",
            "path": "top-assignees",
            "query": {},
            "orm": lambda: selectors.report_top_assignees(SYSTEM, limit=10),
            "sql": (TOP_SQL.format(where=""), {"limit": 10}),
            "shape": _rows_shape,
        },
        {
            "name": "top-assignees status=open,in_progress label=bug since=-1y",
            "path": "top-assignees",
            "query": {"status": "open,in_progress", "label": "bug", "since": year_ago.isoformat()},
            "orm": lambda: selectors.report_top_assignees(
                SYSTEM, limit=10, statuses=["open", "in_progress"], labels=["bug"], since=year_ago
            ),
            "sql": (
                TOP_SQL.format(where="AND status IN ('open', 'in_progress') AND created_at >= %(since)s " + BUG_FILTER),
                {"limit": 10, "since": year_ago},
            ),
            "shape": _rows_shape,
        },
        {
            "name": "latency",
            "path": "latency",
            "query": {},
            "orm": lambda: selectors.report_latency(SYSTEM),
            "sql": (LATENCY_SQL.format(where=""), {}),
            "shape": lambda report: _latency_shape(report),
        },
        {
            "name": "latency priority=high since=-1y",
            "path": "latency",
            "query": {"priority": "high", "since": year_ago.isoformat()},
            "orm": lambda: selectors.report_latency(SYSTEM, priorities=["high"], since=year_ago),
            "sql": (
                LATENCY_SQL.format(where="AND priority IN ('high') AND resolved_at >= %(since)s"),
                {"since": year_ago},
            ),
            "shape": lambda report: _latency_shape(report),
        },
        {
            "name": "latency label=bug",
            "path": "latency",
            "query": {"label": "bug"},
            "orm": lambda: selectors.report_latency(SYSTEM, labels=["bug"]),
            "sql": (LATENCY_SQL.format(where=BUG_FILTER), {}),
            "shape": lambda report: _latency_shape(report),
        },
        {
            "name": "throughput week, 2 years",
            "path": "throughput",
            "query": {"interval": "week", "since": start.isoformat(), "until": SEED_END.isoformat()},
            "orm": lambda: selectors.report_throughput(SYSTEM, interval="week", since=start, until=SEED_END),
            "sql": (THROUGHPUT_SQL, {"interval": "week", "since": start, "until": SEED_END}),
            "shape": _rows_shape,
        },
        {
            "name": "throughput day, 90 days",
            "path": "throughput",
            "query": {"interval": "day", "since": quarter_ago.isoformat(), "until": SEED_END.isoformat()},
            "orm": lambda: selectors.report_throughput(SYSTEM, interval="day", since=quarter_ago, until=SEED_END),
            "sql": (THROUGHPUT_SQL, {"interval": "day", "since": quarter_ago, "until": SEED_END}),
            "shape": _rows_shape,
        },
    ]


def _rows_shape(rows: list) -> list[tuple]:
    """Report rows (dicts from the selector, tuples from SQL) as tuples, for comparing both sides."""
    return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows]


def _latency_shape(report: Any) -> tuple:
    if isinstance(report, list):  # the SQL row: count, avg, [median, p90]
        count, mean, (median, p90) = report[0][0], report[0][1], report[0][2] or (None, None)
        return (count, *(None if v is None else round(v, 6) for v in (mean, median, p90)))
    values = (report.average_seconds, report.median_seconds, report.p90_seconds)
    return (report.resolved_count, *(None if v is None else round(v, 6) for v in values))


def view_runner(path: str, query: dict[str, str], user: Any) -> Callable[[], Any]:
    from django.urls import resolve
    from rest_framework.test import APIRequestFactory, force_authenticate

    factory = APIRequestFactory()
    url = f"/api/reports/{path}"
    view = resolve(url).func

    def run() -> Any:
        request = factory.get(url, query)
        force_authenticate(request, user=user)
        response = view(request)
        assert response.status_code == 200, response.data
        response.render()
        return response

    return run


def main() -> None:
    args = parse_args()
    name = setup_django(args.db)
    seed(args.issues, args.reseed)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(username="reports-bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    user = get_user_model().objects.get(pk=user.pk)  # fresh permission cache, filled on the warm-up run

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(resolved_at) FROM issues_issue")
        total, resolved = cursor.fetchone()
    print(f"database {name}: {total:,} issues, {resolved:,} resolved; median of {args.runs} runs after a warm-up")
    print(f"{'case':<58} {'ORM':>9} {'view':>9} {'SQL':>9} {'ORM/SQL':>8} {'view/SQL':>8}")
    worst = 0.0
    for case in cases():
        sql, params = case["sql"]
        sql_time, sql_result = measure(sql_runner(sql, params), args.runs)
        orm_time, orm_result = measure(case["orm"], args.runs)
        view_time, _ = measure(view_runner(case["path"], case["query"], user), args.runs)
        same = case["shape"](orm_result) == case["shape"](sql_result)
        ratio, view_ratio = orm_time / sql_time, view_time / sql_time
        worst = max(worst, ratio)
        flag = "" if same else "   RESULTS DIFFER"
        print(
            f"{case['name']:<58} {orm_time * 1000:>7.1f}ms {view_time * 1000:>7.1f}ms {sql_time * 1000:>7.1f}ms "
            f"{ratio:>7.2f}x {view_ratio:>7.2f}x{flag}"
        )
        if not same:
            print(f"    ORM: {case['shape'](orm_result)!r:.300}\n    SQL: {case['shape'](sql_result)!r:.300}")
        if args.explain:
            with CaptureQueriesContext(connection) as captured:
                case["orm"]()
            for query in captured.captured_queries:
                print("    ORM query:")
                explain(query["sql"], None)
            print("    hand-written SQL:")
            explain(sql, params)
    print(f"worst ORM/SQL ratio: {worst:.2f}x (target ≤ 1.5x)")


if __name__ == "__main__":
    main()
