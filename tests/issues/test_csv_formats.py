"""POST /api/issues/import with other trackers' exports (issue 16): Jira, GitLab (current and legacy) and GitHub
Projects files recognised from their header, value maps and user matching, repeated columns, delimiters, the
``mapping`` override, history (created/resolved times, source keys), dry runs as previews, and bad input refused
whole. The sample files under csv_samples/ are written from the header lines the trackers produce."""

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from issues.csv_io import formats
from issues.models import EventType, Issue, IssueEvent, Label, Role, Source
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import IMPORT_URL, make_client, post_csv

SAMPLES = Path(__file__).parent / "csv_samples"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def people(db):
    """The users the sample files name: by username (``bob``), by full name (``Alice Smith``) or both."""
    return {
        "alice": UserFactory(username="alice", first_name="Alice", last_name="Smith"),
        "bob": UserFactory(username="bob", first_name="Bob", last_name="Jones"),
    }


def upload(client, name: str, query: str = "", **fields: str):
    """The sample file ``name`` as a multipart upload (field ``file``), with extra form fields."""
    with open(SAMPLES / name, "rb") as handle:
        return client.post(IMPORT_URL + query, {"file": handle, **fields}, format="multipart")


def imported(project=None) -> dict[str, tuple]:
    """title → (status, priority, assignee username, sorted labels, created_at, resolved_at, source key)."""
    keys = dict(IssueEvent.objects.filter(type=EventType.CREATED).values_list("issue_id", "details__source_key"))
    issues = Issue.objects.filter(project=project or default_project()).select_related("assignee")
    return {
        issue.title: (
            issue.status,
            issue.priority,
            issue.assignee.username if issue.assignee else None,
            sorted(label.name for label in issue.labels.all()),
            issue.created_at,
            issue.resolved_at,
            keys[issue.pk],
        )
        for issue in issues.prefetch_related("labels")
    }


EXPECTED = {
    "jira_all_fields.csv": (
        "jira",
        {
            "Login fails on Safari": (
                "closed", "critical", "alice", ["bug", "frontend", "safari"],
                at("2026-02-03 09:05"), at("2026-02-05 13:35"), "ABC-1",
            ),
            "Crash on save": ("in_progress", "high", "bob", ["backend"], at("2026-02-10 10:00"), None, "ABC-2"),
            "Upgrade the TLS library": (
                "closed", "low", None, ["backend", "security"], at("2026-01-01 00:00"), at("2026-01-02 12:30"), "ABC-5",
            ),
        },
    ),
    "jira_no_labels.csv": (
        "jira",
        {
            "Nightly build is red": ("open", "high", "bob", [], at("2026-03-20 08:30"), None, "OPS-7"),
            "Rotate the certificates": (
                "resolved", "critical", None, [], at("2026-03-01 10:00"), at("2026-03-03 16:45"), "OPS-8",
            ),
        },
    ),
    "gitlab_current.csv": (
        "gitlab",
        {
            "Dark mode toggle": ("open", "medium", "alice", ["feature", "ui"], at("2026-03-01 08:00"), None, "12"),
            "Fix memory leak": (
                "closed", "medium", "bob", ["bug"], at("2026-03-03 10:00"), at("2026-03-05 11:30"), "13",
            ),
        },
    ),
    "gitlab_legacy.csv": (
        "gitlab",
        {
            "Broken link in footer": (
                "closed", "medium", "alice", ["bug", "docs"], at("2025-11-02 14:00"), at("2025-11-04 09:15"), "41",
            ),
            "Add RSS feed": ("open", "medium", None, ["feature"], at("2025-11-05 16:20"), None, "42"),
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_format_imports_with_auto_detection(maintainer_client, maintainer, people, name):
    format_name, expected = EXPECTED[name]

    response = upload(maintainer_client, name)

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["format"] == format_name
    rows = imported()
    assert {title: rows[title] for title in expected} == expected
    assert data["created"] == len(rows)
    events = IssueEvent.objects.filter(type=EventType.CREATED)
    assert {(event.source, event.actor_id) for event in events} == {(Source.IMPORT, maintainer.pk)}
    # The created event keeps the import's own time; the issue the file's.
    assert all(event.timestamp > event.issue.created_at for event in events.select_related("issue"))


def test_github_projects_tsv_is_read_tab_separated(maintainer_client, people):
    response = upload(maintainer_client, "github_project.tsv")

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["format"], data["created"], data["failed"], data["ignored_columns"]) == ("github", 3, 0, [])
    rows = {title: row[:4] + row[6:] for title, row in imported().items()}
    assert rows == {
        "Onboarding checklist": ("open", "medium", "alice", ["docs", "good first issue"], "https://github.com/acme/app/issues/3"),
        "Speed up CI": ("in_progress", "medium", "bob", ["ci"], "https://github.com/acme/app/issues/4"),
        "Ship v1": ("closed", "medium", None, [], "https://github.com/acme/app/issues/5"),
    }  # fmt: skip
    shipped = Issue.objects.get(title="Ship v1")
    assert shipped.resolved_at is not None and shipped.resolved_at >= shipped.created_at  # no date: the import's


def test_jira_repeated_columns_labels_read_others_ignored_and_listed(maintainer_client, people):
    response = upload(maintainer_client, "jira_all_fields.csv")

    data = response.json()
    ignored = data["ignored_columns"]
    for repeated in ("Watchers", "Watchers Id", "Sprint", "Comment", "Custom field (Team)"):
        assert ignored.count(repeated) == 1
    assert "Labels" not in ignored and "Summary" not in ignored
    assert data["mapping"]["columns"] == {
        "Summary": "title",
        "Description": "description",
        "Status": "status",
        "Status Category": "status_category",
        "Priority": "priority",
        "Assignee": "assignee",
        "Labels": "labels",
        "Created": "created_at",
        "Updated": "updated_at",
        "Resolved": "resolved_at",
        "Issue key": "source_key",
    }
    assert data["mapping"]["values"]["priority"]["Highest"] == "critical"
    assert data["mapping"]["values"]["status"]["To Do"] == "open"


@pytest.mark.parametrize("name", [*EXPECTED, "github_project.tsv"])
def test_dry_run_answers_as_the_real_run_and_writes_nothing(maintainer_client, people, name):
    preview = upload(maintainer_client, name, "?dry_run=true")

    assert preview.status_code == 200, preview.content
    assert (Issue.objects.count(), Label.objects.count(), IssueEvent.objects.count()) == (0, 0, 0)
    real = upload(maintainer_client, name)
    assert real.status_code == 200, real.content
    assert preview.json() == real.json()
    assert Issue.objects.count() == real.json()["created"] > 0


def test_dry_run_as_a_form_field(maintainer_client, people):
    preview = upload(maintainer_client, "gitlab_legacy.csv", dry_run="true", format="gitlab")

    assert preview.status_code == 200, preview.content
    assert (preview.json()["created"], preview.json()["format"], Issue.objects.count()) == (2, "gitlab", 0)


def test_unmapped_status_is_listed_with_its_count_and_a_mapping_imports_those_rows(maintainer_client, people):
    first = upload(maintainer_client, "jira_all_fields.csv")

    data = first.json()
    assert (data["created"], data["failed"]) == (3, 2)
    assert data["unmapped_values"] == {"status": {"Waiting for QA": 2}}
    assert [error["row"] for error in data["errors"]] == [6, 7]  # ABC-1's description spans lines 2-4
    assert "Waiting for QA" in data["errors"][0]["errors"]["status"][0]

    other = ProjectFactory(key="QA")
    add_member(UserFactory(username="qa-lead"), other, Role.MAINTAINER)
    for user in people.values():
        add_member(user, other, Role.VIEWER)
    mapping = '{"values": {"status": {"Waiting for QA": "in_progress"}}}'
    second = upload(make_client(UserFactory(username="qa-lead")), "jira_all_fields.csv", "?project=QA", mapping=mapping)

    data = second.json()
    assert (data["created"], data["failed"], data["unmapped_values"]) == (5, 0, {})
    assert data["mapping"]["values"]["status"]["Waiting for QA"] == "in_progress"
    rows = imported(other)
    assert rows["Export misses rows"][:3] == ("in_progress", "medium", None)
    assert rows["Typo on pricing page"][:4] == ("in_progress", "low", "alice", ["frontend"])
    assert rows["Typo on pricing page"][4] == at("2026-02-14 11:11")


def test_latency_report_over_an_imported_jira_file_equals_the_files_dates(maintainer_client, people):
    upload(maintainer_client, "jira_all_fields.csv")

    report = maintainer_client.get("/api/reports/latency").json()

    # By hand from the file: ABC-1 03/Feb/26 9:05 AM → 05/Feb/26 1:35 PM = 2 d 4 h 30 min = 189,000 s;
    # ABC-5 01/Jan/26 12:00 AM → 02/Jan/26 12:30 PM = 1 d 12 h 30 min = 131,400 s.
    assert report["resolved_count"] == 2
    assert report["average_resolution_seconds"] == pytest.approx((189_000 + 131_400) / 2)
    assert report["average_resolution_time"] == "1 20:30:00"


def test_mapping_overrides_columns_values_and_users(maintainer_client, people):
    body = "Name;Stage;Urgency;Owner;Opened\r\nFirst;Waiting;P1;Ally;2026-01-05 10:00:00\r\nSecond;;;;\r\n"
    mapping = (
        '{"columns": {"Name": "title", "Stage": "status", "Urgency": "priority", "Owner": "assignee", '
        '"Opened": "created_at"}, "values": {"status": {"waiting": "in_progress"}, "priority": {"P1": "high"}}, '
        '"users": {"Ally": "alice"}}'
    )

    response = post_csv(maintainer_client, body, "?format=native&mapping=" + quote(mapping))

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["created"], data["failed"], data["ignored_columns"]) == (2, 0, [])
    assert data["mapping"]["users"] == {"ally": "alice"}
    first = Issue.objects.get(title="First")
    assert (first.status, first.priority, first.assignee_id) == ("in_progress", "high", people["alice"].pk)
    assert first.created_at == at("2026-01-05 10:00")


def test_full_names_match_uniquely_and_ambiguous_names_are_row_errors(maintainer_client, people):
    UserFactory(username="asmith2", first_name="Alice", last_name="Smith")
    body = "title,assignee\r\nAmbiguous,Alice Smith\r\nBy name,bob jones\r\nNobody,Carol King\r\n"

    response = post_csv(maintainer_client, body)

    data = response.json()
    assert (data["created"], data["failed"]) == (1, 2)
    errors = {error["row"]: error["errors"]["assignee"][0] for error in data["errors"]}
    assert "alice" in errors[2] and "asmith2" in errors[2]
    assert "Carol King" in errors[4]
    assert data["unmapped_values"] == {"assignee": {"Carol King": 1}}
    assert Issue.objects.get().assignee_id == people["bob"].pk

    unassign = "?mapping=" + quote('{"unknown_users": "unassign"}')
    unassigned = post_csv(maintainer_client, "title,assignee\r\nNobody,Carol King\r\n", unassign)
    assert (unassigned.json()["created"], unassigned.json()["unmapped_values"]) == (1, {"assignee": {"Carol King": 1}})
    assert Issue.objects.get(title="Nobody").assignee_id is None


def test_native_format_still_refuses_a_duplicated_header(maintainer_client):
    response = post_csv(maintainer_client, "title,labels,labels\r\nx,a,b\r\n", "?format=native")

    assert response.status_code == 400
    assert "labels" in response.json()["detail"]
    assert Issue.objects.count() == 0


def test_semicolon_and_crlf_and_history_validation(maintainer_client):
    body = (
        "title;status;created_at;resolved_at\r\n"
        "Fine;closed;2026-01-01T00:00:00Z;2026-01-03T00:00:00Z\r\n"
        "Future;open;2999-01-01T00:00:00Z;\r\n"
        "Backwards;resolved;2026-01-05T00:00:00Z;2026-01-04T00:00:00Z\r\n"
        "Open but resolved;open;2026-01-05T00:00:00Z;2026-01-06T00:00:00Z\r\n"
        "Closed undated;closed;;\r\n"
    )

    data = post_csv(maintainer_client, body).json()

    assert (data["format"], data["created"], data["failed"]) == ("native", 2, 3)
    errors = {error["row"]: sorted(error["errors"]) for error in data["errors"]}
    assert errors == {3: ["created_at"], 4: ["resolved_at"], 5: ["resolved_at"]}
    fine = Issue.objects.get(title="Fine")
    assert (fine.created_at, fine.resolved_at) == (at("2026-01-01 00:00"), at("2026-01-03 00:00"))
    undated = Issue.objects.get(title="Closed undated")
    assert undated.resolved_at is not None and undated.resolved_at == undated.created_at  # both the import's time


def test_native_export_imports_back_into_an_empty_project_with_every_field(maintainer_client, people):
    main = default_project()
    issue = IssueFactory(title="Kept", description="d", status="closed", priority="high", assignee=people["bob"])
    issue.labels.add(LabelFactory(name="bug"))
    Issue.objects.filter(pk=issue.pk).update(
        created_at=at("2025-05-01 10:00:00.123456"),
        updated_at=at("2025-05-04 10:00"),
        resolved_at=at("2025-05-03 10:00"),
    )
    copy = ProjectFactory(key="COPY")
    add_member(UserFactory(username="copier"), copy, Role.MAINTAINER)
    add_member(people["bob"], copy, Role.VIEWER)
    body = b"".join(maintainer_client.get("/api/issues/export?project=MAIN").streaming_content)

    response = post_csv(make_client(UserFactory(username="copier")), body, "?project=COPY")

    assert response.json()["format"] == "native"
    fields = ("title", "description", "status", "priority", "assignee_id", "created_at", "updated_at", "resolved_at")
    original, copied = (Issue.objects.filter(project=p).values(*fields).get() for p in (main, copy))
    assert copied == original
    assert [label.name for label in Issue.objects.get(project=copy).labels.all()] == ["bug"]
    assert imported(copy)["Kept"][6] == issue.key


def _jira_header(extra: int) -> str:
    return "Summary,Issue key,Status," + ",".join(f"Custom field (F{i})" for i in range(extra))


@pytest.mark.parametrize(
    ("body", "query", "named"),
    [
        (_jira_header(5_000) + "\r\n", "", "5003 columns"),
        ("title," + "x" * 1_048_576 + "\r\nA,b\r\n", "", "header line"),
        ("Summary,Issue key,Created\r\nA,ABC-1,01/Feb/26 9:00 AM\r\nB,ABC-2,31/Feb/26 9:00 AM\r\n", "", "31/Feb/26"),
        ("title\r\nA\r\n", "?mapping=" + quote("{not json"), "not valid JSON"),
        ("title\r\nA\r\n", "?mapping=" + quote('{"columns": {"title": "headline"}}'), "headline"),
        ("title\r\nA\r\n", "?format=trello", "trello"),
    ],
    ids=["5000-columns", "1mb-header", "31-feb", "mapping-not-json", "mapping-unknown-field", "unknown-format"],
)
def test_bad_input_is_a_400_naming_it_and_writes_nothing(maintainer_client, body, query, named):
    response = post_csv(maintainer_client, body, query)

    assert response.status_code == 400, response.content
    assert named in response.json()["detail"]
    assert (Issue.objects.count(), Label.objects.count(), IssueEvent.objects.count()) == (0, 0, 0)


def test_browsable_form_offers_file_format_mapping_and_dry_run(maintainer_client):
    page = maintainer_client.get(IMPORT_URL, HTTP_ACCEPT="text/html")

    content = page.content.decode()
    for name in ('name="file"', 'name="format"', 'name="mapping"', 'name="dry_run"'):
        assert name in content


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("25/Feb/26 10:17 PM", "2026-02-25 22:17"),
        ("25/Feb/26 12:05 AM", "2026-02-25 00:05"),
        ("01/jan/99 12:00 PM", "1999-01-01 12:00"),
        ("20/Mar/26 08:30", "2026-03-20 08:30"),
        ("11/May/24", "2024-05-11 00:00"),
        ("2026-02-25 22:17:00", "2026-02-25 22:17"),
    ],
)
def test_jira_dates_read_as_jira_writes_them(cell, expected):
    read = formats.JiraDates()

    assert read(cell) == at(expected)
    assert read(cell) == at(expected)  # from the memo the second time


@pytest.mark.parametrize("cell", ["31/Feb/26 9:00 AM", "25/Foo/26", "25/Feb/26 13:00 PM", "25/Feb/26 soon", "tomorrow"])
def test_jira_dates_that_do_not_read_are_refused(cell):
    with pytest.raises(ValueError):
        formats.JiraDates()(cell)


def test_jira_status_category_stands_in_for_an_empty_status(maintainer_client):
    body = "Summary,Issue key,Status,Status Category\r\nA,X-1,,Done\r\nB,X-2,,In Progress\r\n"

    data = post_csv(maintainer_client, body).json()

    assert (data["format"], data["created"]) == ("jira", 2)
    assert dict(Issue.objects.values_list("title", "status")) == {"A": "closed", "B": "in_progress"}


def test_gitlab_without_usernames_matches_assignees_by_full_name(maintainer_client, people):
    body = (
        "Title,State,Assignee,Created At (UTC),Closed At (UTC)\n"
        'A,Opened,"Bob Jones, Alice Smith",2026-01-01 10:00:00,\n'
    )

    data = post_csv(maintainer_client, body).json()

    assert (data["format"], data["created"], data["mapping"]["columns"]["Assignee"]) == ("gitlab", 1, "assignee")
    issue = Issue.objects.get()
    assert (issue.status, issue.assignee_id, issue.created_at) == ("open", people["bob"].pk, at("2026-01-01 10:00"))
