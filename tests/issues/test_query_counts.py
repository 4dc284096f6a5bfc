"""Query counts pinned: list, detail and timeline cost the same whatever the number of rows on the page."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    CommentFactory,
    IssueEventFactory,
    IssueFactory,
    LabelFactory,
    ProjectFactory,
    UserFactory,
    add_member,
    make_issues,
)
from tests.helpers import make_client

pytestmark = pytest.mark.django_db

# the token with its user and the projects they see (one query), then the view's own queries
LIST_QUERIES = 1 + 2  # COUNT, page of issues with their label names (a subquery)
# filtered by project, status, priority and assignee only (parameters or ``q`` qualifiers): the count is the sum of
# the facet tally's rows (one statement, no COUNT(*) over the issues), then the page
FACET_LIST_QUERIES = 1 + 2
# the whole list, unfiltered: its page carries the count the triggers keep (one statement)
WHOLE_LIST_QUERIES = 1 + 1
# issue with label names, comment_count and the first 100 comments (aggregated in the same query)
DETAIL_QUERIES = 1 + 1
TIMELINE_QUERIES = 1 + 3  # issue exists, COUNT, page of events with actors
# writes that link labels to issues take the label-use lock first (an advisory lock)
LABEL_USE_LOCK_QUERIES = 1
# every write of an issue queues its webhook event: one INSERT … SELECT from the project's active subscribed
# webhooks (hooks.outbox), which inserts nothing when there is none; with webhooks it is still that one statement
OUTBOX_QUERIES = 1


def count_queries(client, path: str, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def labelled_issues(n: int, labels: list | None = None) -> list:
    """``n`` issues, each with one to three of ``labels`` (three new ones by default) and an assignee."""
    labels = labels or [LabelFactory() for _ in range(3)]
    users = [UserFactory() for _ in range(3)]
    make_issues(n, label_sets=[labels[:1], labels[:2], labels], assignees=users)
    return labels


def test_list_costs_the_same_for_1_and_100_issues(member_client, django_assert_num_queries):
    labelled_issues(1)
    with django_assert_num_queries(WHOLE_LIST_QUERIES):
        one = member_client.get("/api/issues", {"page_size": 100})
    assert len(one.json()["results"]) == 1
    labelled_issues(99)
    with django_assert_num_queries(WHOLE_LIST_QUERIES):
        hundred = member_client.get("/api/issues", {"page_size": 100})
    results = hundred.json()["results"]
    assert len(results) == 100
    assert all(row["labels"] and row["assignee"] for row in results)


def test_filtered_list_costs_the_same(member_client):
    labels = labelled_issues(1)
    params = {"status": "open", "label": labels[0].name, "ordering": "-priority", "page_size": 100}
    with CaptureQueriesContext(connection) as ctx:
        few = member_client.get("/api/issues", params).json()
    assert few["count"] == 1
    assert len(ctx.captured_queries) == LIST_QUERIES
    labelled_issues(60, labels)
    with CaptureQueriesContext(connection) as ctx:
        many = member_client.get("/api/issues", params).json()
    assert many["count"] == 61
    assert len(ctx.captured_queries) == LIST_QUERIES
    # A DISTINCT would make the database sort every matching row before it can return the first page.
    issue_queries = [query["sql"] for query in ctx.captured_queries if '"issues_issue"' in query["sql"]]
    assert len(issue_queries) == 2  # COUNT and the page
    assert not any("DISTINCT" in sql for sql in issue_queries)


@pytest.mark.parametrize(
    "params",
    [
        {"status": "open"},
        {"status": "open,in_progress", "assignee": "none"},
        {"priority": "high", "project": "MAIN", "ordering": "-priority"},
        {"q": "status:open -assignee:none"},
    ],
    ids=["status", "status-assignee", "priority-project", "q-qualifiers"],
)
def test_a_facet_filtered_list_costs_the_same_and_counts_from_the_tally(member_client, params):
    counts = []
    for n in (2, 98):  # half of them unassigned
        make_issues(n, status="open", priority="high", assignees=[None, UserFactory()])
        with CaptureQueriesContext(connection) as ctx:
            body = member_client.get("/api/issues", {**params, "page_size": 100}).json()
        assert len(ctx.captured_queries) == FACET_LIST_QUERIES, ctx.captured_queries
        count_sql = ctx.captured_queries[1]["sql"]
        assert re.search(r'FROM "issues_issue(facet|status)tally"', count_sql) and "COUNT(" not in count_sql
        assert len(body["results"]) == body["count"]
        counts.append(body["count"])
    assert counts[1] > counts[0] > 0


def test_list_and_detail_cost_the_same_for_a_caller_who_sees_1_project_or_50():
    """The caller's projects are one array parameter of the same statements: 1 project or 50, private ones by
    membership, the same number of queries, each the same statement but for the array's values."""
    one, fifty = UserFactory(username="one"), UserFactory(username="fifty")
    projects = [ProjectFactory(key=f"Q{i}") for i in range(50)]
    add_member(one, projects[0], "member")
    for project in projects:
        add_member(fifty, project, "member")
        make_issues(2, project=project)
    default = IssueFactory()  # the default project (internal): both see it too
    answers = {}
    for user, seen in ((one, 2 + 1), (fifty, 100 + 1)):
        client = make_client(user)
        for query, expected in (({}, WHOLE_LIST_QUERIES), ({"status": "open"}, LIST_QUERIES)):
            with CaptureQueriesContext(connection) as ctx:
                body = client.get("/api/issues", query).json()
            assert body["count"] == seen and len(ctx.captured_queries) == expected, ctx.captured_queries
            answers.setdefault(str(query), []).append([shape(q["sql"]) for q in ctx.captured_queries])
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/api/issues/{default.pk}").status_code == 200
        assert len(ctx.captured_queries) == DETAIL_QUERIES
        answers.setdefault("detail", []).append([shape(q["sql"]) for q in ctx.captured_queries])
    for sql_one, sql_fifty in answers.values():
        assert sql_one == sql_fifty  # the statements do not depend on how many projects the caller sees


def shape(sql: str) -> str:
    """A logged statement without its literal values (arrays, numbers, quoted strings)."""
    return re.sub(r"ARRAY\[[^\]]*\]|'[^']*'|\b\d+\b|\{[0-9,]*\}", "?", sql)


def test_detail_costs_the_same_for_0_and_200_comments(member_client, django_assert_num_queries):
    empty = IssueFactory(labels=[LabelFactory(), LabelFactory()])
    busy = IssueFactory(labels=[LabelFactory()])
    for _ in range(200):
        CommentFactory(issue=busy, author=UserFactory())
    with django_assert_num_queries(DETAIL_QUERIES):
        body = member_client.get(f"/api/issues/{empty.pk}").json()
    assert body["comment_count"] == 0
    with django_assert_num_queries(DETAIL_QUERIES):
        body = member_client.get(f"/api/issues/{busy.pk}").json()
    assert body["comment_count"] == 200 and len(body["comments"]) == 100


def test_timeline_costs_the_same_for_1_and_100_events(member_client, django_assert_num_queries):
    quiet, busy = IssueFactory(), IssueFactory()
    IssueEventFactory(issue=quiet, actor=UserFactory())
    for _ in range(100):
        IssueEventFactory(issue=busy, actor=UserFactory())
    with django_assert_num_queries(TIMELINE_QUERIES):
        assert member_client.get(f"/api/issues/{quiet.pk}/timeline").json()["count"] == 1
    with django_assert_num_queries(TIMELINE_QUERIES):
        body = member_client.get(f"/api/issues/{busy.pk}/timeline", {"page_size": 100}).json()
    assert len(body["results"]) == 100


def test_comments_listing_costs_the_same(member_client):
    issue = IssueFactory()
    CommentFactory(issue=issue, author=UserFactory())
    few = count_queries(member_client, f"/api/issues/{issue.pk}/comments")
    for _ in range(50):
        CommentFactory(issue=issue, author=UserFactory())
    assert count_queries(member_client, f"/api/issues/{issue.pk}/comments", page_size=100) == few


def test_patch_and_create_answer_without_reading_the_issue_again(member_client, django_assert_num_queries):
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    # auth (1), lock the row and read its label names (one statement), the compare-and-set UPDATE, the events
    # INSERT, the webhook outbox; inside the test's own transaction the service's atomic block is a SAVEPOINT/RELEASE
    # pair (2)
    with django_assert_num_queries(1 + 3 + OUTBOX_QUERIES + 2):
        response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "New", "version": 1}, format="json")
    assert response.json()["labels"] == ["bug"]
    assert response.json()["version"] == 2
    # auth (1, with the caller's projects), the project's next number, INSERT issue, create missing labels, read
    # them back, add them, INSERT the created event, the webhook outbox; with labels, first the label-use lock
    # (shared; services.LABEL_USE_LOCK)
    with django_assert_num_queries(1 + LABEL_USE_LOCK_QUERIES + 6 + OUTBOX_QUERIES + 2):
        response = member_client.post("/api/issues", {"title": "x", "labels": ["b", "A"]}, format="json")
    assert response.json()["labels"] == ["A", "b"]
    # without labels: no label-use lock, no label queries
    with django_assert_num_queries(1 + 3 + OUTBOX_QUERIES + 2):
        response = member_client.post("/api/issues", {"title": "y"}, format="json")
    assert response.json()["labels"] == []


def test_patch_and_put_with_labels_take_the_label_use_lock_first(member_client, django_assert_num_queries):
    """A write that touches labels takes the label-use lock (one statement) before it locks the
    issue row; a PATCH without labels does not (pinned above)."""
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    # auth (1), [lock], lock the row and read its label names, create missing labels, read them back, the
    # compare-and-set UPDATE, read the links, delete the removed one, add the new one, the events INSERT, the
    # webhook outbox; SAVEPOINT/RELEASE (2)
    with django_assert_num_queries(1 + LABEL_USE_LOCK_QUERIES + 8 + OUTBOX_QUERIES + 2) as ctx:
        response = member_client.patch(f"/api/issues/{issue.pk}", {"labels": ["ui"], "version": 1}, format="json")
    assert response.json()["labels"] == ["ui"]
    assert_label_use_lock_before_row_lock(ctx.captured_queries)
    with django_assert_num_queries(1 + LABEL_USE_LOCK_QUERIES + 8 + OUTBOX_QUERIES + 2) as ctx:
        response = member_client.put(f"/api/issues/{issue.pk}/labels", {"labels": ["bug"], "version": 2}, format="json")
    assert response.json()["labels"] == ["bug"]
    assert_label_use_lock_before_row_lock(ctx.captured_queries)


def assert_label_use_lock_before_row_lock(queries: list[dict]) -> None:
    sqls = [query["sql"] for query in queries]
    advisory = [i for i, sql in enumerate(sqls) if "pg_advisory_xact_lock_shared" in sql]
    row_locks = [i for i, sql in enumerate(sqls) if "FOR UPDATE" in sql]
    assert len(row_locks) == 1 and advisory == [row_locks[0] - 1], sqls


def test_a_deep_page_lists_the_same_issues_with_the_same_queries(member_client, django_assert_num_queries):
    """Past page 1 the label subquery runs for the page's rows only (ids picked first); same rows, same cost."""
    from issues.models import Issue

    labelled_issues(45)
    for params, order in (
        ({}, ("-created_at", "-id")),
        ({"ordering": "updated_at"}, ("updated_at", "id")),
        ({"status": "open"}, ("-created_at", "-id")),
    ):
        expected = list(Issue.objects.filter(**({"status": "open"} if "status" in params else {})).order_by(*order))
        with CaptureQueriesContext(connection) as ctx:
            response = member_client.get("/api/issues", {"page_size": 20, "page": 2, **params})
        assert response.status_code == 200, response.content
        assert len(ctx.captured_queries) == (LIST_QUERIES if params else WHOLE_LIST_QUERIES)
        body = response.json()
        assert [row["id"] for row in body["results"]] == [issue.pk for issue in expected[20:40]]
        assert [row["labels"] for row in body["results"]] == [issue.label_names() for issue in expected[20:40]]
        page_sql = ctx.captured_queries[-1]["sql"]
        assert "IN (SELECT" in page_sql and "LIMIT" in page_sql
