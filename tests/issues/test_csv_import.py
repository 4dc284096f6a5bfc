"""POST /api/issues/import: streamed CSV, per-row validation with line numbers, partial success, all-or-nothing
for encoding, header and size problems, dry runs, and rows the database refuses."""

import pytest
from django.db import connection

from issues import csv_io, services
from issues.csv_io import importer
from issues.models import EventType, Issue, IssueEvent, Label, Source, Status
from tests.factories import LabelFactory, UserFactory
from tests.helpers import IMPORT_HEADER, IMPORT_URL, csv_text, db_state, post_csv, upload_csv


@pytest.fixture
def small_batches(monkeypatch):
    """Several batches (savepoints) per file, so batch boundaries are exercised."""
    monkeypatch.setattr(importer, "IMPORT_BATCH_SIZE", 7)


@pytest.mark.parametrize("post", [post_csv, upload_csv], ids=["text-csv", "multipart"])
def test_import_creates_issues_with_labels_assignee_and_created_event(maintainer_client, maintainer, post):
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    LabelFactory(name="Bug")
    body = csv_text(
        [
            ["Login fails", "Steps:\n1. open\n2. click", "in_progress", "high", "alice", "bug, ui"],
            ["Crash on save", "", "resolved", "", str(bob.pk), "crash;UI"],
            ["Plain", "", "", "", "", ""],
        ]
    )

    response = post(maintainer_client, body)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "total_rows": 3,
        "created": 3,
        "failed": 0,
        "errors": [],
        "errors_truncated": False,
        "ignored_columns": [],
    }
    issues = {issue.title: issue for issue in Issue.objects.prefetch_related("labels")}
    login, crash, plain = issues["Login fails"], issues["Crash on save"], issues["Plain"]
    assert (login.status, login.priority, login.assignee_id) == ("in_progress", "high", alice.pk)
    assert login.description == "Steps:\n1. open\n2. click"
    assert sorted(label.name for label in login.labels.all()) == ["Bug", "ui"]  # existing "Bug" reused
    assert (crash.status, crash.priority, crash.assignee_id) == ("resolved", "medium", bob.pk)
    assert sorted(label.name for label in crash.labels.all()) == ["crash", "ui"]
    assert crash.resolved_at is not None and login.resolved_at is None
    assert (plain.status, plain.assignee_id, plain.labels.count()) == ("open", None, 0)
    assert {issue.reporter_id for issue in issues.values()} == {maintainer.pk}
    assert {issue.version for issue in issues.values()} == {1}
    assert Label.objects.count() == 3
    events = IssueEvent.objects.values_list("issue_id", "type", "source", "actor_id")
    assert sorted(events) == sorted((i.pk, EventType.CREATED, Source.IMPORT, maintainer.pk) for i in issues.values())


def test_import_header_is_trimmed_case_insensitive_any_order_and_lists_unknown_columns(maintainer_client):
    body = csv_text([["high", "Reordered", "x", "1"]], header=[" Priority", "TITLE ", "Colour", "id"])

    response = post_csv(maintainer_client, body)

    assert response.status_code == 200, response.content
    assert response.json()["ignored_columns"] == ["Colour", "id"]
    issue = Issue.objects.get()
    assert (issue.title, issue.priority, issue.status) == ("Reordered", "high", "open")


def test_import_1000_rows_with_every_kind_of_bad_row_creates_exactly_the_good_ones(maintainer_client, small_batches):
    alice = UserFactory(username="alice")
    lines = [",".join(IMPORT_HEADER)]
    expected_errors: dict[int, str] = {}
    good_titles: list[str] = []

    def good(n: int) -> str:
        title = f"Good {n}"
        good_titles.append(title)
        if n % 10 == 0:  # quoted cells (commas, quotes, newlines) along the way
            return f'{title},"Step 1, step 2 ""quoted""\nsecond line",open,low,alice,"a,b"'
        return f"{title},plain,in_progress,high,{alice.pk},bug"

    bad_rows = {
        100: (",desc,open,low,,", "title"),  # blank title
        150: ("   ,desc,open,low,,", "title"),  # whitespace-only title
        200: ("T" * 256 + ",desc,open,low,,", "title"),  # too long title
        300: ("Bad status,desc,wontfix,low,,", "status"),
        350: ("Bad priority,desc,open,urgent,,", "priority"),
        400: ("Unknown id,desc,open,low,987654,", "assignee"),
        450: ("Unknown name,desc,open,low,nobody,", "assignee"),
        500: ("Nul\x00byte,desc,open,low,,", "title"),
        550: ("Nul desc,a\x00b,open,low,,", "description"),
        600: ("Short row,desc,open", "non_field_errors"),
        650: ("Extra cell,desc,open,low,,,surplus", "non_field_errors"),
        700: ("Huge field," + "x" * 200_000 + ",open,low,,", "description"),
        750: ("Long label,desc,open,low,," + "l" * 51, "labels"),
        800: ('"Unterminated quote,desc,open,low,,', "non_field_errors"),
    }
    line_no = 1
    n = 0
    while line_no < 1000:
        line_no += 1
        if line_no in bad_rows:
            text, field = bad_rows[line_no]
            lines.append(text)
            expected_errors[line_no] = field
        else:
            n += 1
            lines.append(good(n))
            line_no += lines[-1].count("\n")  # a quoted newline makes the record two lines long
    body = "\n".join(lines) + "\n"

    response = post_csv(maintainer_client, body)

    assert response.status_code == 200, response.content
    data = response.json()
    assert {e["row"]: list(e["errors"]) for e in data["errors"]} == {
        line: [field] for line, field in expected_errors.items()
    }
    assert data["failed"] == len(expected_errors)
    assert data["created"] == len(good_titles)
    assert data["total_rows"] == len(good_titles) + len(expected_errors)
    assert sorted(Issue.objects.values_list("title", flat=True)) == sorted(good_titles)
    assert IssueEvent.objects.filter(type=EventType.CREATED, source=Source.IMPORT).count() == len(good_titles)
    quoted = Issue.objects.get(title="Good 10")
    assert quoted.description == 'Step 1, step 2 "quoted"\nsecond line'
    assert sorted(quoted.labels.values_list("name", flat=True)) == ["a", "b"]


def test_import_reports_unterminated_quote_at_end_of_file(maintainer_client):
    body = csv_text([["Fine", "", "", "", "", ""]]) + '"Never closed,desc,open\nmore text\n'

    response = post_csv(maintainer_client, body)

    assert response.status_code == 200
    data = response.json()
    assert data["created"] == 1
    assert data["errors"][0]["row"] == 3
    assert "Unterminated" in data["errors"][0]["errors"]["non_field_errors"][0]
    # the lines after the broken one are read again as rows of their own ("more text" is a short row)
    assert [e["row"] for e in data["errors"]] == [3, 4]


def test_import_utf8_with_bom_works(maintainer_client):
    body = "\ufeff" + csv_text([["Café ☕", "naïve", "", "", "", "étiquette"]])

    response = upload_csv(maintainer_client, body.encode("utf-8"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    issue = Issue.objects.get()
    assert (issue.title, issue.description) == ("Café ☕", "naïve")
    assert list(issue.labels.values_list("name", flat=True)) == ["étiquette"]


@pytest.mark.parametrize("post", [post_csv, upload_csv], ids=["text-csv", "multipart"])
def test_import_latin1_or_invalid_bytes_is_400_naming_the_line_and_writes_nothing(
    maintainer_client, post, small_batches
):
    good_rows = "".join(f"Row {i},,,,,\n" for i in range(30))  # several batches come before the bad line
    body = (",".join(IMPORT_HEADER) + "\n" + good_rows).encode() + "Caf\xe9,,,,,\n".encode("latin-1")
    before = db_state()

    response = post(maintainer_client, body)

    assert response.status_code == 400
    assert response.json()["line"] == 32
    assert "Line 32" in response.json()["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    "header",
    ["description,status\n", "title,Title\n", "title,labels,LABELS\n", "", "\n\n"],
    ids=["no-title", "duplicate-title", "duplicate-labels", "empty", "blank"],
)
def test_import_bad_header_is_400_and_writes_nothing(maintainer_client, header):
    response = post_csv(maintainer_client, header + "A,b,c\n")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_header"
    assert not Issue.objects.exists()


def test_import_over_max_rows_is_413_and_writes_nothing(maintainer_client, settings, small_batches):
    settings.IMPORT_MAX_ROWS = 20
    response = post_csv(maintainer_client, csv_text([[f"Row {i}", "", "", "", "", ""] for i in range(21)]))
    assert response.status_code == 413
    assert "20 rows" in response.json()["detail"]
    assert not Issue.objects.exists()

    response = post_csv(maintainer_client, csv_text([[f"Row {i}", "", "", "", "", ""] for i in range(20)]))
    assert response.status_code == 200
    assert Issue.objects.count() == 20


def test_import_over_max_bytes_is_413_and_writes_nothing(maintainer_client, settings):
    body = csv_text([[f"Row {i}", "x" * 50, "", "", "", ""] for i in range(100)])
    settings.IMPORT_MAX_BYTES = len(body) - 1
    assert post_csv(maintainer_client, body).status_code == 413
    assert upload_csv(maintainer_client, body).status_code == 413
    assert not Issue.objects.exists()


def test_import_byte_limit_holds_while_streaming_without_content_length(maintainer, settings, small_batches):
    """A chunked body has no Content-Length for the middleware to check: the stream itself is counted."""
    settings.IMPORT_MAX_BYTES = 2_000
    chunks = iter([(",".join(IMPORT_HEADER) + "\n").encode()] + [f"Row {i},,,,,\n".encode() for i in range(300)])
    with pytest.raises(csv_io.ImportTooLarge):
        services.issue_import_csv(actor=maintainer, chunks=chunks)
    assert not Issue.objects.exists()


def test_import_dry_run_writes_nothing_and_answers_the_same(maintainer_client):
    UserFactory(username="alice")
    body = csv_text(
        [
            ["Good", "", "open", "", "alice", "new-label"],
            ["", "", "", "", "", ""],
            ["Unknown user", "", "", "", "zed", ""],
        ]
    )
    before = db_state()

    dry = post_csv(maintainer_client, body, "?dry_run=true")

    assert dry.status_code == 200
    assert db_state() == before
    real = post_csv(maintainer_client, body)
    assert real.json() == dry.json()
    assert dry.json()["created"] == 1 and dry.json()["failed"] == 2
    assert Issue.objects.count() == 1


def test_import_bad_dry_run_value_is_400(maintainer_client):
    assert post_csv(maintainer_client, "title\nA\n", "?dry_run=maybe").status_code == 400
    assert not Issue.objects.exists()


def test_import_lists_at_most_1000_errors(maintainer_client):
    body = csv_text([["", "", "", "", "", ""]] * 1005 + [["Fine", "", "", "", "", ""]])

    data = post_csv(maintainer_client, body).json()

    assert data["failed"] == 1005 and data["created"] == 1
    assert len(data["errors"]) == 1000
    assert data["errors_truncated"] is True
    assert data["errors"][0]["row"] == 2 and data["errors"][-1]["row"] == 1001


@pytest.fixture
def refuse_boom_titles(db):
    """A real database failure: a trigger that refuses issues titled 'boom'."""
    statements = [
        """CREATE FUNCTION refuse_boom() RETURNS trigger AS $$
           BEGIN IF NEW.title = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END
           $$ LANGUAGE plpgsql""",
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON issues_issue FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def test_import_row_refused_by_the_database_is_a_row_error_and_keeps_the_others(
    maintainer_client, refuse_boom_titles, small_batches
):
    rows = [[f"Row {i}", "", "", "", "", "lbl"] for i in range(20)]
    rows[9] = ["boom", "", "", "", "", "lbl"]

    response = post_csv(maintainer_client, csv_text(rows))

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["created"], data["failed"]) == (19, 1)
    assert data["errors"][0]["row"] == 11
    assert "boom refused" in data["errors"][0]["errors"]["non_field_errors"][0]
    assert Issue.objects.count() == 19
    assert IssueEvent.objects.count() == 19
    assert Issue.labels.through.objects.count() == 19


def test_import_formula_prefix_is_removed(maintainer_client):
    body = csv_text([["'=SUM(A1)", "'-5 points", "", "", "", "'@team"], ["'x", "''=y", "", "", "", ""]])

    assert post_csv(maintainer_client, body).status_code == 200

    titles = dict(Issue.objects.values_list("title", "description"))
    assert titles == {"=SUM(A1)": "-5 points", "'x": "'=y"}
    assert set(Label.objects.values_list("name", flat=True)) == {"@team"}


def test_import_statuses_and_priorities_ignore_case_and_spaces(maintainer_client):
    assert post_csv(maintainer_client, csv_text([["A", "", " Closed ", "HIGH", "", ""]])).status_code == 200
    issue = Issue.objects.get()
    assert (issue.status, issue.priority) == (Status.CLOSED, "high")
    assert issue.resolved_at is not None


def test_import_other_media_types_are_415_and_missing_file_is_400(maintainer_client):
    response = maintainer_client.post(IMPORT_URL, {"title": "x"}, format="json")
    assert response.status_code == 415
    response = maintainer_client.post(IMPORT_URL, {"other": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()
    response = maintainer_client.generic("POST", IMPORT_URL, b"title\nA\n", content_type="text/csv; charset=latin-1")
    assert response.status_code == 400
    assert not Issue.objects.exists()


def test_import_needs_a_maintainer(member_client, viewer_client, anon_client):
    body = csv_text([["A", "", "", "", "", ""]])
    assert post_csv(anon_client, body).status_code == 401
    assert post_csv(viewer_client, body).status_code == 403
    assert post_csv(member_client, body).status_code == 403
    assert not Issue.objects.exists()


def test_import_query_count_per_batch_does_not_grow_with_rows(maintainer, django_assert_max_num_queries):
    """A batch costs a fixed number of queries."""
    UserFactory(username="alice")
    rows = "".join(f"Row {i},,open,low,alice,l{i % 3}\n" for i in range(150))
    chunks = [(",".join(IMPORT_HEADER) + "\n" + rows).encode()]
    with django_assert_max_num_queries(12):
        result = services.issue_import_csv(actor=maintainer, chunks=chunks)
    assert result.created == 150


def test_import_refuses_deactivated_assignees_by_username_or_id(maintainer_client):
    """A deactivated user cannot be made an assignee by an import either: such a row is an assignee error, the
    other rows are created."""
    alice = UserFactory(username="alice")
    gone = UserFactory(username="gone", is_active=False)
    body = csv_text(
        [
            ["To alice", "", "", "", "alice", ""],
            ["To gone by name", "", "", "", "gone", ""],
            ["To gone by id", "", "", "", str(gone.pk), ""],
            ["To alice by id", "", "", "", str(alice.pk), ""],
        ]
    )
    response = post_csv(maintainer_client, body)
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["created"], result["failed"]) == (2, 2)
    assert [error["row"] for error in result["errors"]] == [3, 4]
    for error, cell in zip(result["errors"], ["gone", str(gone.pk)], strict=True):
        assert list(error["errors"]) == ["assignee"]
        assert f'"{cell}"' in error["errors"]["assignee"][0]
    assert sorted(Issue.objects.values_list("title", "assignee_id")) == [
        ("To alice", alice.pk),
        ("To alice by id", alice.pk),
    ]
    assert not Issue.objects.filter(assignee=gone).exists()
