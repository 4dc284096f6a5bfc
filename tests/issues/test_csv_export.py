"""GET /api/issues/export: streamed CSV with the list's filters, formula cells escaped, and an export that
imports back unchanged."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues import csv_io
from issues.models import Issue, IssueEvent, Label
from tests.factories import IssueFactory, LabelFactory, UserFactory
from tests.helpers import post_csv, streamed_csv_rows

URL = "/api/issues/export"


def export(client, query: str = "") -> tuple[object, list[dict[str, str]]]:
    response = client.get(URL + query)
    assert response.status_code == 200, response.content
    return response, streamed_csv_rows(response)


def test_export_streams_csv_with_all_columns(viewer_client):
    alice = UserFactory(username="alice")
    issue = IssueFactory(title="Login fails", assignee=alice, status="resolved", priority="high")
    issue.labels.add(LabelFactory(name="ui"), LabelFactory(name="bug"))

    response, rows = export(viewer_client)

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.streaming
    assert list(rows[0]) == list(csv_io.EXPORT_COLUMNS)
    row = rows[0]
    assert row["id"] == str(issue.pk)
    assert (row["title"], row["status"], row["priority"]) == ("Login fails", "resolved", "high")
    assert (row["assignee"], row["labels"], row["reporter"]) == ("alice", "bug,ui", issue.reporter.username)
    assert row["version"] == "1"
    assert row["created_at"].endswith("Z")
    assert row["resolved_at"] == ""


def test_export_applies_the_list_filters(viewer_client):
    bug = LabelFactory(name="bug")
    IssueFactory(title="Open bug", status="open").labels.add(bug)
    IssueFactory(title="Closed bug", status="closed").labels.add(bug)
    IssueFactory(title="Open other", status="open")

    _, rows = export(viewer_client, "?status=open&label=bug")

    assert [row["title"] for row in rows] == ["Open bug"]


def test_export_bad_filter_is_a_json_400(viewer_client):
    response = viewer_client.get(URL + "?status=nope", HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert "status" in response.json()


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_export_escapes_formula_cells(viewer_client, first):
    IssueFactory(title=f"{first}cmd|' /C calc'!A0", description=f"{first}1+1")

    _, rows = export(viewer_client)

    assert rows[0]["title"].startswith("'" + first)
    assert rows[0]["description"] == f"'{first}1+1"


def test_export_queries_do_not_grow_per_row(viewer_client):
    labels = [LabelFactory(name=f"l{i}") for i in range(3)]
    reporter = UserFactory()
    for i in range(30):
        IssueFactory(title=f"Issue {i}", reporter=reporter, assignee=reporter).labels.add(*labels[: i % 4])
    with CaptureQueriesContext(connection) as few:
        export(viewer_client)
    for i in range(60):
        IssueFactory(title=f"More {i}", reporter=reporter).labels.add(*labels[: i % 4])
    with CaptureQueriesContext(connection) as many:
        _, rows = export(viewer_client)
    assert len(rows) == 90
    assert len(many.captured_queries) == len(few.captured_queries)


def test_export_needs_authentication(anon_client):
    assert anon_client.get(URL).status_code == 401


def test_export_then_import_into_an_empty_database_reproduces_every_issue(maintainer_client):
    alice = UserFactory(username="alice")
    bob = UserFactory(username="-bob")  # a username that looks like a formula
    tricky = [
        ('=HYPERLINK("x")', "+1 line\r\nsecond, with comma", "open", "low", alice, ["bug", "UI"]),
        ("-5 degrees", "@mention\ttab", "in_progress", "high", bob, ["=weird"]),
        ("'=already quoted", "''+two quotes", "resolved", "critical", None, []),
        ('Plain "quoted" title', "", "closed", "medium", alice, ["@home", "bug"]),
        ("Ünïcödé ☕", "\tleading tab", "open", "medium", None, ["ünï"]),
        ("'apostrophe", "'", "open", "low", None, ["'quote"]),
    ]
    for title, description, status, priority, assignee, label_names in tricky:
        issue = IssueFactory(title=title, description=description, status=status, priority=priority, assignee=assignee)
        issue.labels.add(*(Label.objects.get_or_create(name=name)[0] for name in label_names))

    def snapshot() -> list[tuple]:
        return sorted(
            (
                issue.title,
                issue.description,
                issue.status,
                issue.priority,
                issue.assignee_id,
                tuple(sorted(label.name for label in issue.labels.all())),
            )
            for issue in Issue.objects.prefetch_related("labels")
        )

    before = snapshot()
    response = maintainer_client.get(URL)
    body = b"".join(response.streaming_content)

    IssueEvent.objects.all().delete()
    Issue.objects.all().delete()
    Label.objects.all().delete()
    imported = post_csv(maintainer_client, body)

    assert imported.status_code == 200, imported.content
    data = imported.json()
    assert (data["created"], data["failed"]) == (len(tricky), 0), data["errors"]
    assert sorted(data["ignored_columns"]) == sorted(
        ["id", "reporter", "version", "created_at", "updated_at", "resolved_at"]
    )
    assert snapshot() == before
