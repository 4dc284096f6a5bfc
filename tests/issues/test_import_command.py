"""``manage.py import_issues`` (issue 15): the operator's CSV import means what ``POST /api/issues/import`` means
for the same file (the same answer, rows, numbers, timeline events and ``issues.imported`` outbox row), a dry run
writes nothing, a file the API refuses whole is a one-line error and writes nothing, and progress is a tqdm bar
on a terminal and plain lines otherwise, on stderr, stdout being the JSON answer alone."""

import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from hooks.models import Webhook, WebhookDelivery
from issues.models import EventType, Issue, IssueEvent, Source
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.helpers import db_state, make_client, post_csv
from tests.hooks.receivers import receiver as start_receiver

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "csv_samples"
MIXED = (
    "title,status,priority,assignee,labels\nLogin fails,open,high,,bug\n,open,low,,\nExport slow,closed,,,perf;bug\n"
)
PROGRESS = re.compile(r"^(\d+)/(\d+) rows \((\d+)%\), [\d,]+ rows/s, [\d,]+ s left$")


class Terminal(StringIO):
    """What a terminal answers to ``isatty``; it records what is written to it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def web(db):
    return ProjectFactory(key="WEB")


@pytest.fixture
def boss(web):
    user = UserFactory(username="boss")
    add_member(user, web, "maintainer")
    return user


def csv_file(tmp_path: Path, content: str | bytes, name: str = "issues.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def command(*args: Any, stderr: StringIO | None = None) -> tuple[dict[str, Any], str]:
    """The command's JSON answer (its whole stdout) and what it wrote on stderr."""
    out, err = StringIO(), stderr if stderr is not None else StringIO()
    call_command("import_issues", *[str(arg) for arg in args], stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def api(user: Any, content: str | bytes, query: str) -> dict[str, Any]:
    response = post_csv(make_client(user), content, query)
    assert response.status_code == 200, response.content
    return response.json()


def rows_of(project: Any) -> list[tuple]:
    """(number, title, status, reporter, labels, the created event's (source, actor)) of each issue, by number."""
    events = dict(
        IssueEvent.objects.filter(type=EventType.CREATED, issue__project=project).values_list("issue_id", "source")
    )
    actors = dict(
        IssueEvent.objects.filter(type=EventType.CREATED, issue__project=project).values_list("issue_id", "actor_id")
    )
    issues = Issue.objects.filter(project=project).order_by("number").prefetch_related("labels")
    return [
        (
            issue.number,
            issue.title,
            issue.status,
            issue.reporter_id,
            sorted(label.name for label in issue.labels.all()),
            (events[issue.pk], actors[issue.pk]),
        )
        for issue in issues
    ]


def test_imports_as_the_api_does_rows_numbers_events_and_the_outbox_row(boss, web, tmp_path):
    Webhook.objects.create(project=web, url="http://hooks.example.com/in", events=["*"])

    answer, _ = command(csv_file(tmp_path, MIXED), "--project", "web", "--user", "boss")

    assert (answer["total_rows"], answer["created"], answer["failed"]) == (3, 2, 1)
    assert [(error["row"], list(error["errors"])) for error in answer["errors"]] == [(3, ["title"])]
    assert answer["format"] == "native"
    imported = (Source.IMPORT, boss.pk)
    assert rows_of(web) == [
        (1, "Login fails", "open", boss.pk, ["bug"], imported),
        (2, "Export slow", "closed", boss.pk, ["bug", "perf"], imported),
    ]
    assert not Issue.objects.exclude(project=web).exists()

    # The API, for the same file and caller: the same answer, the next numbers, the same outbox row.
    assert api(boss, MIXED, "?project=WEB") == answer
    assert [row[:2] for row in rows_of(web)[2:]] == [(3, "Login fails"), (4, "Export slow")]
    command_event, api_event = (row.payload for row in WebhookDelivery.objects.order_by("created_at", "id"))
    assert command_event["type"] == api_event["type"] == "issues.imported"
    assert (
        command_event["data"]
        == api_event["data"]
        == {
            "project": "WEB",
            "counts": {"total_rows": 3, "created": 2, "failed": 1},
            "actor": {"id": boss.pk, "username": "boss"},
            "source": "import",
        }
    )


def test_dry_run_answers_as_the_real_import_and_writes_nothing(boss, web, tmp_path):
    Webhook.objects.create(project=web, url="http://hooks.example.com/in", events=["*"])
    before = db_state()

    preview, _ = command(csv_file(tmp_path, MIXED), "--project", "WEB", "--user", "boss", "--dry-run")

    assert db_state() == before
    assert not WebhookDelivery.objects.exists()
    assert preview == api(boss, MIXED, "?project=WEB&dry_run=true")
    real, _ = command(csv_file(tmp_path, MIXED), "--project", "WEB", "--user", "boss")
    assert real == preview
    assert [row[0] for row in rows_of(web)] == [1, 2]  # the dry run took no number


def test_bad_rows_get_the_apis_errors(boss, web, tmp_path):
    """Each row on its own: an unknown status, an unknown assignee, a title too long, a date in the future; the
    valid rows between them are created. The errors are the API's, word for word."""
    UserFactory(username="carol")  # exists, but cannot see the private project
    content = (
        "title,status,assignee,created_at\n"
        "fine,open,,\n"
        "bad status,nonsense,,\n"
        "ghost,open,nobody,\n"
        "outsider,open,carol,\n"
        f"{'x' * 300},open,,\n"
        "future,open,,2999-01-01T00:00:00Z\n"
        "fine too,resolved,boss,\n"
    )
    answer, _ = command(csv_file(tmp_path, content), "--project", "WEB", "--user", "boss")

    assert (answer["created"], answer["failed"]) == (2, 5)
    assert [error["row"] for error in answer["errors"]] == [3, 4, 5, 6, 7]
    assert answer["unmapped_values"] == {"status": {"nonsense": 1}, "assignee": {"nobody": 1}}
    assert answer == api(boss, content, "?project=WEB")


def test_a_foreign_format_and_a_mapping_as_the_api_reads_them(maintainer):
    """Jira's "all fields" export, named explicitly, then with the mapping the API takes for its unknown status."""
    for username, first, last in (("alice", "Alice", "Smith"), ("bob", "Bob", "Jones")):
        UserFactory(username=username, first_name=first, last_name=last)
    sample = SAMPLES / "jira_all_fields.csv"
    content = sample.read_bytes()

    answer, _ = command(sample, "--project", "MAIN", "--user", "maintainer", "--format", "JIRA", "--dry-run")
    assert (answer["format"], answer["created"], answer["failed"]) == ("jira", 3, 2)
    assert answer["unmapped_values"] == {"status": {"Waiting for QA": 2}}
    assert answer == api(maintainer, content, "?project=MAIN&format=jira&dry_run=true")

    mapping = '{"values": {"status": {"Waiting for QA": "in_progress"}}}'
    answer, _ = command(sample, "--project", "MAIN", "--user", "maintainer", "--format", "jira", "--mapping", mapping)
    assert (answer["created"], answer["failed"], answer["unmapped_values"]) == (5, 0, {})
    keys = IssueEvent.objects.filter(type=EventType.CREATED).values_list("details__source_key", flat=True)
    assert sorted(keys) == ["ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5"]
    assert answer == api(maintainer, content, f"?project=MAIN&format=jira&mapping={quote(mapping)}")


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (MIXED, ["--project", "NOPE"], "Unknown project 'NOPE'. Nothing was imported."),
        (MIXED, ["--user", "nobody"], "No active user 'nobody'. Nothing was imported."),
        (MIXED, ["--user", "member"], "User 'member' may not import into project WEB: only its maintainers and staff"),
        (MIXED, ["--format", "xml"], 'Unknown format "xml" (one of: auto, native, jira, gitlab, github).'),
        (MIXED, ["--mapping", '{"columns": []}'], "mapping.columns must be a JSON object. Nothing was imported."),
        ("name,status\nx,open\n", [], "The header has no 'title' column"),
        (b"title\nok\n\xff\xfe\n", [], "Line 3 is not valid UTF-8."),
    ],
)
def test_a_file_refused_whole_is_one_error_and_writes_nothing(boss, web, member, tmp_path, content, options, message):
    add_member(member, web, "member")
    given = {"--project": "WEB", "--user": "boss", **dict(zip(options[::2], options[1::2], strict=True))}
    before = db_state()

    with pytest.raises(CommandError) as refused:
        command(csv_file(tmp_path, content), *[item for pair in given.items() for item in pair])

    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert db_state() == before and not WebhookDelivery.objects.exists()


def test_an_unreadable_file_is_refused(boss, tmp_path):
    for path in (tmp_path / "missing.csv", tmp_path):
        with pytest.raises(CommandError, match=r"^Cannot read .*: (No such file or directory|Is a directory)\."):
            command(path, "--project", "WEB", "--user", "boss")


def test_the_limits_are_a_jobs_not_a_requests(boss, web, tmp_path, settings):
    """An operator's file may be as large as a job's (IMPORT_ASYNC_MAX_*), not only as a synchronous request's;
    past it, the job's 413 detail, and nothing written."""
    settings.IMPORT_MAX_ROWS, settings.IMPORT_ASYNC_MAX_ROWS = 1, 2
    answer, _ = command(csv_file(tmp_path, "title\na\nb\n"), "--project", "WEB", "--user", "boss")
    assert answer["created"] == 2
    with pytest.raises(CommandError, match=r"^The file has more than 2 rows\. Nothing was imported\.$"):
        command(csv_file(tmp_path, "title\nc\nd\ne\n"), "--project", "WEB", "--user", "boss")
    assert [row[1] for row in rows_of(web)] == ["a", "b"]


def test_staff_may_import_anywhere_as_through_the_api(staff, web, tmp_path):
    answer, _ = command(csv_file(tmp_path, MIXED), "--project", "WEB", "--user", "staffer")
    assert answer["created"] == 2
    assert {row[3] for row in rows_of(web)} == {staff.pk}


def test_not_on_a_terminal_progress_is_plain_lines_per_batch(boss, tmp_path, settings):
    settings.JOBS_IMPORT_BATCH_SIZE = 10
    content = "title\n" + "".join(f"Issue {n}\n" for n in range(25))
    path = csv_file(tmp_path, content)

    _, every_batch = command(path, "--project", "WEB", "--user", "boss", "--dry-run", "--progress-every", "0")
    lines = [PROGRESS.match(line) for line in every_batch.splitlines()]
    assert all(lines), every_batch
    assert [(m.group(1), m.group(2), m.group(3)) for m in lines if m] == [
        ("10", "25", "40"),
        ("20", "25", "80"),
        ("25", "25", "100"),
    ]
    # By default at most one line every 10 s: the first batch's and the last.
    _, throttled = command(path, "--project", "WEB", "--user", "boss", "--dry-run")
    assert [line.split(" ")[0] for line in throttled.splitlines()] == ["10/25", "25/25"]
    _, quiet = command(path, "--project", "WEB", "--user", "boss", "--dry-run", "-v", "0")
    assert quiet == ""


def test_on_a_terminal_progress_is_a_bar(boss, tmp_path):
    content = "title\n" + "".join(f"Issue {n}\n" for n in range(25))
    terminal = Terminal()

    answer, _ = command(csv_file(tmp_path, content), "--project", "WEB", "--user", "boss", stderr=terminal)

    assert answer["created"] == 25
    bar = terminal.getvalue()
    last = bar.rstrip("\n").split("\r")[-1]
    assert re.match(r"^Importing: 100%\|.*\| 25/25 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ rows/s\]$", last), repr(bar)
    assert not PROGRESS.search(bar)


# --- the real command line ----------------------------------------------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py`` in a process of its own, on the test database (committed data: transactional tests)."""
    db = connection.settings_dict
    url = (
        f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "WEBHOOK_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_DEBUG": "1", "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_line_json_on_stdout_progress_on_stderr_and_a_delivered_webhook(tmp_path):
    """In its own process, with no broker (``make run``): the answer alone on stdout, progress lines on stderr (not
    a terminal), exit status 0; the ``issues.imported`` event is delivered after the commit, signed."""
    web = ProjectFactory(key="WEB")
    add_member(UserFactory(username="boss"), web, "maintainer")
    path = csv_file(tmp_path, MIXED)
    with start_receiver() as receiver:
        hook = Webhook.objects.create(project=web, url=receiver.url, events=["issues.imported"])
        done = manage(
            "import_issues", str(path), "--project", "WEB", "--user", "boss", WEBHOOK_ALLOW_PRIVATE_TARGETS="1"
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["created"] == 2
        # One batch: one progress line (the in-process delivery may log its own line on stderr too).
        assert len([line for line in done.stderr.splitlines() if PROGRESS.match(line)]) == 1, done.stderr
        (received,) = receiver.wait_for(1)
        assert received.verify(hook.secret)["data"]["counts"] == {"total_rows": 3, "created": 2, "failed": 1}
    assert Issue.objects.filter(project=web).count() == 2

    refused = manage("import_issues", str(path), "--project", "NOPE", "--user", "boss")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == "CommandError: Unknown project 'NOPE'. Nothing was imported.\n"
    assert Issue.objects.count() == 2
