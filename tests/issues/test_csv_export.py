"""GET /api/issues/export: streamed CSV with the list's filters, the caller's projects only (each issue with its
project and key), formula cells escaped, and an export that imports back unchanged into a project."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues import csv_io
from issues.models import Issue, IssueEvent, Label, Role, Visibility
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import make_client, post_csv, streamed_csv_rows

URL = "/api/issues/export"


def export(client, query: str = "") -> tuple[object, list[dict[str, str]]]:
    response = client.get(URL + query)
    assert response.status_code == 200, response.content
    return response, streamed_csv_rows(response)


def test_export_streams_csv_with_all_columns(viewer_client):
    alice = UserFactory(username="alice")
    issue = IssueFactory(title="Login fails", assignee=alice, status="resolved", priority="high")
    issue.labels.add(LabelFactory(name="ui"), LabelFactory(name="bug"))

    issue.refresh_from_db()

    response, rows = export(viewer_client)

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.streaming
    assert list(rows[0]) == list(csv_io.EXPORT_COLUMNS)
    assert set(csv_io.EXPORT_COLUMNS) == {
        *csv_io.IMPORT_COLUMNS,
        *("id", "project", "key", "version", "created_at", "updated_at", "resolved_at", "reporter"),
    }
    row = rows[0]
    assert row["id"] == str(issue.pk)
    assert (row["project"], row["key"]) == ("MAIN", f"MAIN-{issue.number}")
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


def test_export_has_only_the_projects_the_caller_sees_with_their_keys(db):
    internal = ProjectFactory(key="OPEN", visibility=Visibility.INTERNAL)
    secret = ProjectFactory(key="SECRET", visibility=Visibility.PRIVATE)
    main_issue = IssueFactory(title="Main issue")
    open_issue = IssueFactory(project=internal, title="Internal issue")
    secret_issue = IssueFactory(project=secret, title="Classified plan", description="Top secret")
    secret_issue.labels.add(LabelFactory(project=secret, name="classified"))
    outsider = UserFactory(username="outsider")  # no membership: the internal projects only
    insider = UserFactory(username="insider", role="viewer", role__project=secret)
    keys = {issue.pk: f"{issue.project.key}-{Issue.objects.get(pk=issue.pk).number}" for issue in Issue.objects.all()}

    response = make_client(outsider).get(URL)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    _, insider_rows = export(make_client(insider))

    assert "SECRET" not in body and "Classified" not in body and "classified" not in body and "Top secret" not in body
    outsider_rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert sorted((row["project"], row["key"], row["title"]) for row in outsider_rows) == [
        ("MAIN", keys[main_issue.pk], "Main issue"),
        ("OPEN", keys[open_issue.pk], "Internal issue"),
    ]
    assert {(row["project"], row["key"]) for row in insider_rows} == {
        ("MAIN", keys[main_issue.pk]),
        ("OPEN", keys[open_issue.pk]),
        ("SECRET", keys[secret_issue.pk]),
    }
    secret_row = next(row for row in insider_rows if row["project"] == "SECRET")
    assert (secret_row["title"], secret_row["labels"]) == ("Classified plan", "classified")

    # The list's project filter narrows it.
    _, narrowed = export(make_client(insider), "?project=SECRET")
    assert [row["key"] for row in narrowed] == [keys[secret_issue.pk]]


def test_export_then_import_into_another_project_reproduces_every_issue(maintainer_client):
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
        main = default_project()
        issue.labels.add(*(Label.objects.get_or_create(project=main, name=name)[0] for name in label_names))
        # History from before the import: the copy must keep it (created, updated and resolved times).
        days = timedelta(days=len(title))
        resolved_at = timezone.now() - days / 2 if status in ("resolved", "closed") else None
        Issue.objects.filter(pk=issue.pk).update(
            created_at=timezone.now() - days, updated_at=timezone.now() - days / 3, resolved_at=resolved_at
        )
    # The copy is private: the assignees must be able to see it, so they are its viewers.
    copy = ProjectFactory(key="COPY", visibility=Visibility.PRIVATE)
    add_member(UserFactory(username="copier"), copy, Role.MAINTAINER)
    for user in (alice, bob):
        add_member(user, copy, Role.VIEWER)

    def snapshot(project) -> list[tuple]:
        return sorted(
            (
                issue.title,
                issue.description,
                issue.status,
                issue.priority,
                issue.assignee_id,
                tuple(sorted(label.name for label in issue.labels.all())),
                issue.created_at,
                issue.updated_at,
                issue.resolved_at,
            )
            for issue in Issue.objects.filter(project=project).prefetch_related("labels")
        )

    before = snapshot(default_project())
    response = maintainer_client.get(URL)
    body = b"".join(response.streaming_content)

    imported = post_csv(make_client(UserFactory(username="copier")), body, "?project=COPY")

    assert imported.status_code == 200, imported.content
    data = imported.json()
    assert (data["created"], data["failed"]) == (len(tricky), 0), data["errors"]
    assert sorted(data["ignored_columns"]) == sorted(["id", "project", "reporter", "version"])
    assert snapshot(copy) == before  # dates included: the export's created_at, updated_at, resolved_at are read
    # Each copy's created event keeps the original's key (the export's ``key`` column) as its source key.
    source_keys = IssueEvent.objects.filter(issue__project=copy).values_list("details__source_key", flat=True)
    assert sorted(source_keys) == sorted(issue.key for issue in Issue.objects.filter(project=default_project()))
    assert snapshot(default_project()) == before
    # The labels were created in the copy, with the same names; the copy's issues are COPY-1.. in file order.
    assert sorted(Label.objects.filter(project=copy).values_list("name", flat=True)) == sorted(
        Label.objects.filter(project=default_project()).values_list("name", flat=True)
    )
    exported_titles = [row["title"] for row in streamed_csv_rows(maintainer_client.get(URL + "?project=MAIN"))]
    copied = Issue.objects.filter(project=copy).order_by("number").values_list("number", "title")
    assert [number for number, _ in copied] == list(range(1, len(tricky) + 1))
    assert [csv_io.unescape_cell(title) for title in exported_titles] == [title for _, title in copied]
