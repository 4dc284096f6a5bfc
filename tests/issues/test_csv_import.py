"""POST /api/issues/import: streamed CSV, per-row validation with line numbers, partial success, all-or-nothing
for encoding, header and size problems, dry runs, rows the database refuses, and the project imported into
(``?project=KEY``: its numbers, labels, maintainers and the assignees who can see it)."""

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues import csv_io, services
from issues.csv_io import importer
from issues.models import EventType, Issue, IssueEvent, Label, Role, Source, Status, Visibility, number_sequence_name
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import (
    IMPORT_HEADER,
    IMPORT_URL,
    assert_json_error,
    auth_header,
    csv_text,
    db_state,
    make_client,
    post_csv,
    released_together,
    upload_csv,
)


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
    data = response.json()
    assert {key: value for key, value in data.items() if key != "mapping"} == {
        "total_rows": 3,
        "created": 3,
        "failed": 0,
        "errors": [],
        "errors_truncated": False,
        "ignored_columns": [],
        "format": "native",
        "unmapped_values": {},
    }
    assert data["mapping"]["columns"] == {name: name for name in IMPORT_HEADER}
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
        services.issue_import_csv(actor=maintainer, project=default_project(), chunks=chunks)
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
    # The refused batch was retried row by row with the numbers drawn for it: row order kept, only boom's is a gap.
    numbered = dict(Issue.objects.values_list("number", "title"))
    first = min(numbered)  # the default project's sequence outlives the tests' rolled-back transactions
    assert sorted(numbered) == [first + n for n in range(20) if n != 9]
    assert [numbered[n] for n in sorted(numbered)] == [f"Row {i}" for i in range(20) if i != 9]


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


def test_import_query_count_per_batch_does_not_grow_with_rows(maintainer):
    """An import costs a fixed number of queries whatever its rows (the ``issues.imported`` webhook event
    included: one statement), and each further batch that brings no new assignee or label four: its ids, its
    numbers (one statement each), its savepoint and the savepoint's release."""
    UserFactory(username="alice")
    project = default_project()

    def queries(rows: int, batch_size: int) -> int:
        body = "".join(f"Row {i},,open,low,alice,l{i % 3}\n" for i in range(rows))
        chunks = [(",".join(IMPORT_HEADER) + "\n" + body).encode()]
        with CaptureQueriesContext(connection) as captured:
            result = services.issue_import_csv(actor=maintainer, project=project, chunks=chunks, batch_size=batch_size)
        assert result.created == rows
        return len(captured.captured_queries)

    one_batch = queries(150, 150)
    assert one_batch <= 16
    assert queries(1_500, 1_500) == one_batch
    assert queries(1_500, 150) == one_batch + 9 * 4


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


# --- projects -----------------------------------------------------------------------------------------------


def issue_numbers(project) -> list[tuple[int, str]]:
    """(number, title) of the project's issues, by number."""
    return list(Issue.objects.filter(project=project).order_by("number").values_list("number", "title"))


def test_import_into_a_named_project_numbers_its_issues_and_uses_its_labels(db, small_batches):
    web = ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)
    lead = UserFactory(username="web-lead", role="maintainer", role__project=web)
    main_bug = LabelFactory(name="Bug")  # the default project's label of the same name: never used by WEB
    IssueFactory(title="Main issue", labels=[main_bug])
    main_before = issue_numbers(default_project())
    rows = [[f"Web {i}", "", "", "", "", "BUG, ui" if i % 2 else ""] for i in range(20)]

    response = post_csv(make_client(lead), csv_text(rows), "?project=web")  # the key ignores case

    assert response.status_code == 200, response.content
    assert (response.json()["created"], response.json()["failed"]) == (20, 0)
    # Consecutive from 1, in row order, across several batches (7 rows each).
    assert issue_numbers(web) == [(i + 1, f"Web {i}") for i in range(20)]
    web_labels = {label.name.lower(): label for label in Label.objects.filter(project=web)}
    assert set(web_labels) == {"bug", "ui"}
    assert web_labels["bug"].name == "BUG" and web_labels["bug"].pk != main_bug.pk
    linked = set(Issue.labels.through.objects.filter(issue__project=web).values_list("label_id", flat=True))
    assert linked == {web_labels["bug"].pk, web_labels["ui"].pk}
    assert list(main_bug.issues.values_list("title", flat=True)) == ["Main issue"]
    assert issue_numbers(default_project()) == main_before
    assert set(IssueEvent.objects.filter(issue__project=web).values_list("type", "source")) == {
        (EventType.CREATED, Source.IMPORT)
    }

    # The next import goes on with WEB's numbers; one into the default project with the default project's.
    assert (
        post_csv(make_client(lead), csv_text([["Web next", "", "", "", "", "bug"]]), "?project=WEB").json()["created"]
        == 1
    )
    assert issue_numbers(web)[-1] == (21, "Web next")
    assert Label.objects.filter(project=web).count() == 2
    admin = UserFactory(username="main-lead", role="maintainer")
    assert post_csv(make_client(admin), csv_text([["Main next", "", "", "", "", ""]])).status_code == 200
    assert issue_numbers(default_project())[-1] == (main_before[-1][0] + 1, "Main next")


def test_import_into_a_project_the_caller_cannot_see_is_a_404_like_an_unknown_one_and_writes_nothing(
    maintainer_client, staff_client
):
    secret = ProjectFactory(key="SECRET", visibility=Visibility.PRIVATE)
    add_member(UserFactory(username="insider"), secret, Role.MAINTAINER)
    body = csv_text([["Sneaky", "", "", "", "", "leak"]])
    before = db_state()

    invisible = assert_json_error(post_csv(maintainer_client, body, "?project=SECRET"), 404)
    unknown = assert_json_error(post_csv(maintainer_client, body, "?project=NOPE"), 404)
    malformed = [
        assert_json_error(post_csv(maintainer_client, body, f"?project={key}"), 404)
        for key in ("a-b", "X", "SECRET1234567", "%C3%9F", "S%00")
    ]
    as_upload = assert_json_error(upload_csv(maintainer_client, body, "?project=secret&dry_run=true"), 404)

    assert invisible == unknown == as_upload == {"detail": "Not found.", "code": "not_found"}
    assert all(body == unknown for body in malformed)
    assert db_state() == before
    # Not a number was taken from the project: its first import (by staff, who see every project) gets 1.
    assert post_csv(staff_client, body, "?project=SECRET").json()["created"] == 1
    assert issue_numbers(secret) == [(1, "Sneaky")]


def test_import_into_a_project_needs_its_maintainer_role(db):
    web = ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)
    viewer = UserFactory(username="web-viewer", role="viewer", role__project=web)
    member = UserFactory(username="web-member", role="member", role__project=web)
    main_maintainer = UserFactory(username="main-lead", role="maintainer")  # a maintainer elsewhere
    add_member(main_maintainer, web, Role.MEMBER)
    web_lead = UserFactory(username="web-lead", role="maintainer", role__project=web)  # a viewer of MAIN (internal)
    body = csv_text([["A", "", "", "", "", "x"]])
    before = db_state()

    for user in (viewer, member):  # they see WEB, but may not import into it
        assert_json_error(post_csv(make_client(user), body, "?project=WEB"), 403)
    error = assert_json_error(post_csv(make_client(main_maintainer), body, "?project=WEB"), 403)
    assert error["detail"] == "You need the maintainer role in this project to do this."
    assert_json_error(post_csv(make_client(web_lead), body), 403)  # no ?project: the default project
    assert db_state() == before

    assert post_csv(make_client(web_lead), body, "?project=WEB").json()["created"] == 1
    assert post_csv(make_client(main_maintainer), body).json()["created"] == 1
    assert Issue.objects.filter(project=web).count() == 1
    assert Issue.objects.filter(project=default_project()).count() == 1


def test_import_assignee_who_cannot_see_a_private_project_is_a_row_error(db):
    web = ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)
    lead = UserFactory(username="web-lead", role="maintainer", role__project=web)
    alice = UserFactory(username="alice", role="viewer", role__project=web)
    bob = UserFactory(username="bob", role="member")  # sees the default project, not WEB
    carol = UserFactory(username="carol", is_staff=True)  # staff see every project
    rows = [
        ["To alice", "", "", "", "alice", ""],
        ["To bob", "", "", "", "bob", ""],
        ["To bob by id", "", "", "", str(bob.pk), ""],
        ["To carol", "", "", "", "carol", ""],
        ["To nobody", "", "", "", "nobody", ""],
    ]

    dry = post_csv(make_client(lead), csv_text(rows), "?project=WEB&dry_run=true")
    response = post_csv(make_client(lead), csv_text(rows), "?project=WEB")

    assert response.status_code == 200, response.content
    result = response.json()
    assert dry.json() == result
    assert (result["created"], result["failed"]) == (2, 3)
    errors = {error["row"]: error["errors"] for error in result["errors"]}
    assert list(errors) == [3, 4, 6]
    for line, cell in ((3, "bob"), (4, str(bob.pk))):
        assert errors[line] == {
            "assignee": [f'User "{cell}" cannot see project WEB and cannot be assigned its issues.']
        }
    assert "Unknown" in errors[6]["assignee"][0]
    assert sorted(Issue.objects.values_list("title", "assignee_id")) == [("To alice", alice.pk), ("To carol", carol.pk)]
    # The dry run took no number: the real import's two issues are WEB-1 and WEB-2.
    assert issue_numbers(web) == [(1, "To alice"), (2, "To carol")]

    # The default project is internal: every active user can be assigned its issues.
    admin = UserFactory(username="main-lead", role="maintainer")
    assert post_csv(make_client(admin), csv_text(rows[1:3])).json()["created"] == 2


def test_import_dry_run_leaves_the_project_sequence_alone(maintainer_client):
    rows = csv_text([[f"Row {i}", "", "", "", "", ""] for i in range(5)])
    project = default_project()

    def next_number() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value, is_called FROM {number_sequence_name(project.pk)}")
            last, called = cursor.fetchone()
        return last + 1 if called else last

    before = next_number()
    assert post_csv(maintainer_client, rows, "?dry_run=true").json()["created"] == 5
    assert next_number() == before
    assert post_csv(maintainer_client, rows).json()["created"] == 5
    assert next_number() == before + 5
    assert [number for number, _ in issue_numbers(project)] == list(range(before, before + 5))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_into_one_project_get_distinct_numbers(live_server, monkeypatch):
    """Two imports into one project at once, over HTTP, in small batches so that their batches interleave: every
    number is given once, none is lost, and each import's numbers follow its rows."""
    monkeypatch.setattr(importer, "IMPORT_BATCH_SIZE", 5)
    race = ProjectFactory(key="RACE", visibility=Visibility.PRIVATE)
    headers = [auth_header(UserFactory(username=f"lead{i}", role="maintainer", role__project=race)) for i in range(2)]
    rows = 200
    bodies = [csv_text([[f"Import {i} row {n}", "", "", "", "", ""] for n in range(rows)]).encode() for i in range(2)]

    def run(i: int) -> requests.Response:
        return requests.post(
            f"{live_server.url}{IMPORT_URL}?project=RACE",
            data=bodies[i],
            headers={**headers[i], "Content-Type": "text/csv"},
            timeout=60,
        )

    responses = released_together(2, run)

    assert [r.status_code for r in responses] == [200, 200], [r.text[:300] for r in responses]
    assert [r.json()["created"] for r in responses] == [rows, rows]
    numbered = issue_numbers(race)
    assert [number for number, _ in numbered] == list(range(1, 2 * rows + 1))
    for i in range(2):
        mine = [title for _, title in numbered if title.startswith(f"Import {i} ")]
        assert mine == [f"Import {i} row {n}" for n in range(rows)]
