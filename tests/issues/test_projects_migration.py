"""The projects migration (issues 0010) on a database the previous version filled and used.

The previous version (PREVIOUS, the last commit before projects, taken from this repository's history with
``git archive``) migrates a scratch database of its own, seeds it with ``seed_demo``, makes one API user per old
role with ``create_api_user`` (and one staff user, and one in two role groups), and serves it with gunicorn: each
user runs the same requests (reads, creates, PATCH, labels, comments, bulk, import, label creation) and its
answers are recorded. Then this version migrates the same database, and:

- every issue, label, label link, comment and event is there unchanged, all in the default project MAIN
  (internal), issues numbered 1..n by (created_at, id), labels named as before; the project's next number is n+1;
- every holder of an old role group is a member of MAIN with that role (the highest, for two groups), the role
  groups are gone and ``staff`` stays; the tally of each project equals COUNT(*) of its issues;
- served by this version, each old user, with the token it had, gets exactly the answers it got before.
"""

import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql

from tests import servers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = "8b8aafd6a7e85811de6420714566103259c1c108"  # the last commit before projects (issue 13)
IMPORTED = "imported by"  # the titles of the rows the users import
SEED = ["--issues", "240", "--users", "6", "--seed", "13"]
ROLE_GROUPS = ("viewer", "member", "maintainer")

# The old users: create_api_user's arguments, the role group added by hand (a user in two groups), and the role
# each must hold in MAIN after the migration (the highest of its groups).
OLD_USERS: dict[str, tuple[list[str], str | None, str]] = {
    "old_viewer": (["--role", "viewer"], None, "viewer"),
    "old_member": (["--role", "member"], None, "member"),
    "old_maintainer": (["--role", "maintainer"], None, "maintainer"),
    "old_staff": (["--role", "viewer", "--staff"], None, "viewer"),  # staff: a maintainer everywhere all the same
    "old_two_groups": (["--role", "viewer"], "maintainer", "maintainer"),
}

READS = ("list", "detail", "comments", "timeline", "labels", "export", "report", "users")
WRITES = ("create", "patch", "replace_labels", "comment")
MANAGES = ("bulk", "import", "create_label")
ALL = {**dict.fromkeys(READS, 200), "create": 201, "patch": 200, "replace_labels": 200, "comment": 201}
ALL |= {"bulk": 200, "import": 200, "create_label": 201}
# What each old user could do with the previous version, and must still do: the status of each request.
EXPECTED = {
    "old_viewer": ALL | dict.fromkeys(WRITES + MANAGES, 403),
    "old_member": ALL | dict.fromkeys(MANAGES, 403),
    "old_maintainer": ALL,
    "old_staff": ALL,
    "old_two_groups": ALL,
}


# --- the scratch database and the two versions of the code ----------------------------------------------------


def scratch_url(name: str) -> str:
    """A database named ``name`` on the server the tests use (the machine's PostgreSQL or the embedded one)."""
    return servers.database_url().rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def scratch_database() -> Iterator[str]:
    """A fresh database ``it_mig_<random>`` for this module, dropped at the end; its URL."""
    name = f"it_mig_{secrets.token_hex(6)}"
    admin_url = scratch_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield scratch_url(name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous version's files, from this repository's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS], capture_output=True)
    if archive.returncode != 0:
        pytest.fail(
            f"the previous version ({PREVIOUS[:7]}) is not in this checkout's history, which this test needs "
            f"(a shallow clone? `git fetch --unshallow`): {archive.stderr.decode(errors='replace').strip()}",
            pytrace=False,
        )
    tree = tmp_path_factory.mktemp("previous")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def environment(database_url: str, tree: Path) -> dict[str, str]:
    """The environment of ``tree``'s commands and server: production settings (no .env), ``database_url``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "GUNICORN_"))
        and name not in ("DATABASE_URL", "DEFAULT_PROJECT_KEY", "REDIS_URL", "PYTHONPATH")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "issue_tracker.settings",
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": servers.SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_USER": "off",
            "THROTTLE_ANON": "off",
            "THROTTLE_AUTH": "off",
            "PYTHONPATH": str(tree),
        }
    )
    return env


def manage(tree: Path, database_url: str, *commands: list[str]) -> list[str]:
    """``manage.py <command>`` of ``tree`` for each of ``commands``, all at once, each run by this interpreter (the
    project's virtualenv); their outputs."""
    env = environment(database_url, tree)
    running = [
        (
            command,
            subprocess.Popen(
                [sys.executable, "manage.py", *command],
                cwd=tree,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for command in commands
    ]
    outputs = []
    for command, proc in running:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"manage.py {' '.join(command)} in {tree} failed:\n{out}\n{err}"
        outputs.append(out)
    return outputs


@contextmanager
def serving(tree: Path, database_url: str, directory: Path) -> Iterator[str]:
    """``tree``'s app under gunicorn (its deploy/gunicorn.conf.py, 2 workers, DEBUG off) on ``database_url``, logs in
    ``directory``; the base URL, once /api/health answers."""
    server = None
    for _attempt in range(3):  # the free port may be taken before gunicorn binds it
        port = servers.free_port()
        log = directory / f"gunicorn-{port}.log"
        env = environment(database_url, tree) | {
            "GUNICORN_WORKERS": "2",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ACCESS_LOG": str(directory / "access.log"),
            "GUNICORN_ERROR_LOG": "-",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(tree / "deploy" / "gunicorn.conf.py")],
                cwd=tree,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        candidate = servers.GunicornServer(port, proc, log, directory / "access.log")
        if servers.wait_healthy(candidate):
            server = candidate
            break
        candidate.stop()
        if "Address already in use" not in servers.tail(log):
            break
    if server is None:
        raise RuntimeError(f"gunicorn ({tree}) did not answer /api/health; its log:\n{servers.tail(log)}")
    try:
        yield server.url
    finally:
        server.stop()


# --- what the database holds ----------------------------------------------------------------------------------


@dataclass
class Snapshot:
    issues: list[tuple]  # (id, title, description, status, priority, assignee, reporter, version, dates...)
    labels: list[tuple]  # (id, name, color)
    issue_labels: list[tuple]  # (issue id, label name)
    comments: list[tuple]
    events: list[tuple]
    groups: list[tuple]  # (username, group name)
    tokens: dict[str, str]  # username → token key

    def creation_order(self) -> list[int]:
        """The issue ids by (created_at, id)."""
        return [row[0] for row in sorted(self.issues, key=lambda row: (row[8], row[0]))]


def snapshot(database_url: str) -> Snapshot:
    """The rows the migration must keep, read with the columns both versions have."""
    with psycopg.connect(database_url) as conn:

        def rows(query: str) -> list[tuple]:
            return conn.execute(query).fetchall()

        return Snapshot(
            issues=rows(
                "SELECT id, title, description, status, priority, assignee_id, reporter_id, version, created_at,"
                " updated_at, resolved_at FROM issues_issue ORDER BY id"
            ),
            labels=rows("SELECT id, name, color FROM issues_label ORDER BY id"),
            issue_labels=rows(
                "SELECT il.issue_id, l.name FROM issues_issue_labels il JOIN issues_label l ON l.id = il.label_id"
                " ORDER BY 1, 2"
            ),
            comments=rows("SELECT id, issue_id, author_id, body, created_at FROM issues_comment ORDER BY id"),
            events=rows(
                "SELECT id, issue_id, type, actor_id, source, details, timestamp FROM issues_issueevent ORDER BY id"
            ),
            groups=rows(
                "SELECT u.username, g.name FROM auth_user_groups ug JOIN auth_user u ON u.id = ug.user_id"
                " JOIN auth_group g ON g.id = ug.group_id ORDER BY 1, 2"
            ),
            tokens=dict(rows("SELECT u.username, t.key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id")),
        )


def query(database_url: str, statement: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(statement, params).fetchall()


def tally_and_counts(database_url: str) -> tuple[dict[int, int], dict[int, int]]:
    """The kept tally per project, and COUNT(*) of each project's issues."""
    kept = query(database_url, "SELECT project_id, sum(issues)::bigint FROM issues_issuetally GROUP BY 1")
    counted = query(database_url, "SELECT project_id, count(*) FROM issues_issue GROUP BY 1")
    return dict(kept), dict(counted)


# --- what a user can do ---------------------------------------------------------------------------------------


def session_for(token: str) -> requests.Session:
    session = servers.local_session()
    session.headers["Authorization"] = f"Token {token}"
    return session


def abilities(base: str, token: str, issue_id: int, tag: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The status of each request the user makes (on issue ``issue_id``, its own target; ``tag`` names what it
    creates), and what an import reported created; and the bodies of the answers that are errors but not 403s.
    Every request means the same to both versions."""
    notes: dict[str, str] = {}

    def note(answer: requests.Response, *args: Any, **kwargs: Any) -> None:
        if answer.status_code >= 400 and answer.status_code != 403:
            notes[f"{answer.request.method} {answer.request.path_url}"] = f"{answer.status_code} {answer.text[:300]}"

    s = session_for(token)
    s.hooks["response"].append(note)
    api = f"{base}/api"
    issue = f"{api}/issues/{issue_id}"
    got: dict[str, Any] = {}
    got["list"] = s.get(f"{api}/issues", timeout=30).status_code
    detail = s.get(issue, timeout=30)
    got["detail"] = detail.status_code
    version = detail.json()["version"]
    got["comments"] = s.get(f"{issue}/comments", timeout=30).status_code
    got["timeline"] = s.get(f"{issue}/timeline", timeout=30).status_code
    got["labels"] = s.get(f"{api}/labels", timeout=30).status_code
    got["export"] = s.get(f"{api}/issues/export", timeout=60).status_code
    got["report"] = s.get(f"{api}/reports/top-assignees", timeout=30).status_code
    got["users"] = s.get(f"{api}/users", timeout=30).status_code
    got["create"] = s.post(f"{api}/issues", json={"title": f"by {tag}", "labels": ["bug"]}, timeout=30).status_code
    got["patch"] = s.patch(issue, json={"priority": "critical", "version": version}, timeout=30).status_code
    got["replace_labels"] = s.put(f"{issue}/labels", json=["docs", f"by-{tag}"], timeout=30).status_code
    got["comment"] = s.post(f"{issue}/comments", json={"body": f"said by {tag}"}, timeout=30).status_code
    got["bulk"] = s.post(
        f"{api}/issues/bulk-status", json={"ids": [issue_id], "status": "closed"}, timeout=30
    ).status_code
    rows = f"title,status\n{IMPORTED} {tag} A,open\n{IMPORTED} {tag} B,in_progress\n"
    imported = s.post(f"{api}/issues/import", files={"file": ("issues.csv", rows, "text/csv")}, timeout=60)
    got["import"] = imported.status_code
    if imported.status_code == 200:
        got["import_created"] = imported.json()["created"]
    got["create_label"] = s.post(f"{api}/labels", json={"name": f"label-{tag}"}, timeout=30).status_code
    return got, notes


def run_abilities(base: str, tokens: dict[str, str], targets: dict[str, int], run: str) -> dict[str, dict]:
    """``abilities`` of every old user; an error answer other than a 403 fails here, with its body."""
    found = {}
    for username in OLD_USERS:
        got, notes = abilities(base, tokens[username], targets[username], f"{username}-{run}")
        assert not notes, f"{username} ({run}): {notes}"
        found[username] = got
    return found


# --- the previous version, then the migration ----------------------------------------------------------------


@dataclass
class Migrated:
    url: str
    before: Snapshot  # the previous version's data, last thing before the migration
    after: Snapshot  # right after it
    old_abilities: dict[str, dict]  # what each old user could do with the previous version
    targets: dict[str, int]  # the issues the new run's users act on


@pytest.fixture(scope="module")
def migrated(previous_tree: Path, scratch_database: str, tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    url = scratch_database
    manage(previous_tree, url, ["migrate", "--noinput"])
    # The demo data and the users at once (each its own transaction; they touch different rows): less waiting.
    users = [["create_api_user", username, *args] for username, (args, _group, _role) in OLD_USERS.items()]
    manage(previous_tree, url, ["seed_demo", *SEED], *users)
    for username, (_args, extra_group, _role) in OLD_USERS.items():
        if extra_group:
            query(
                url,
                "INSERT INTO auth_user_groups (user_id, group_id) SELECT u.id, g.id FROM auth_user u, auth_group g"
                " WHERE u.username = %s AND g.name = %s RETURNING id",
                [username, extra_group],
            )
    seeded = snapshot(url)
    ids = [row[0] for row in seeded.issues]
    old_targets = {username: ids[i] for i, username in enumerate(OLD_USERS)}
    new_targets = {username: ids[-1 - i] for i, username in enumerate(OLD_USERS)}
    with serving(previous_tree, url, tmp_path_factory.mktemp("previous-server")) as base:
        old_abilities = run_abilities(base, seeded.tokens, old_targets, "old")
    # The imported rows become history from before the seed (as an import that keeps created_at, or the admin,
    # could write them): created after the seeded issues, numbered before them, and all at one instant, so their
    # ids order them.
    query(
        url,
        "UPDATE issues_issue SET created_at = '2020-01-01T00:00:00Z' WHERE title LIKE %s RETURNING id",
        [f"{IMPORTED} %"],
    )
    before = snapshot(url)

    manage(ROOT, url, ["migrate", "--noinput"])
    return Migrated(url, before, snapshot(url), old_abilities, new_targets)


def test_the_previous_version_behaved_as_expected(migrated):
    """The baseline: with the previous version each old user could do what its role allowed (and the imports
    created their rows)."""
    for username, expected in EXPECTED.items():
        got = migrated.old_abilities[username]
        assert {name: got[name] for name in expected} == expected, username
        assert got.get("import_created", 2) == 2, username
    assert len(migrated.before.issues) > 240  # the seed and what the users added
    assert migrated.before.comments and migrated.before.events and migrated.before.issue_labels


def test_every_row_is_kept(migrated):
    before, after = migrated.before, migrated.after
    assert after.issues == before.issues
    assert after.labels == before.labels  # names (and colours) unchanged
    assert after.issue_labels == before.issue_labels  # label names per issue
    assert after.comments == before.comments
    assert after.events == before.events
    assert after.tokens == before.tokens


def test_everything_is_in_the_default_project_numbered_by_creation_order(migrated):
    url = migrated.url
    (main,) = query(url, "SELECT id, key, visibility FROM issues_project")
    main_id, key, visibility = main
    assert (key, visibility) == ("MAIN", "internal")
    assert query(url, "SELECT DISTINCT project_id FROM issues_issue") == [(main_id,)]
    assert query(url, "SELECT DISTINCT project_id FROM issues_label") == [(main_id,)]
    numbers = dict(query(url, "SELECT id, number FROM issues_issue"))
    order = migrated.before.creation_order()
    assert [numbers[issue_id] for issue_id in order] == list(range(1, len(order) + 1))
    # The imported rows are the oldest: numbered first, in id order within their one timestamp.
    imported = [row[0] for row in migrated.before.issues if row[1].startswith(IMPORTED)]
    assert len(imported) == 6
    assert sorted(numbers[issue_id] for issue_id in imported) == list(range(1, len(imported) + 1))
    assert [numbers[issue_id] for issue_id in sorted(imported)] == list(range(1, len(imported) + 1))
    kept, counted = tally_and_counts(url)
    assert kept == counted == {main_id: len(order)}


def test_old_roles_become_memberships_of_the_default_project(migrated):
    url = migrated.url
    old_groups: dict[str, set[str]] = {}
    for username, group in migrated.before.groups:
        old_groups.setdefault(username, set()).add(group)
    highest = {
        username: max((g for g in groups if g in ROLE_GROUPS), key=ROLE_GROUPS.index)
        for username, groups in old_groups.items()
        if groups & set(ROLE_GROUPS)
    }
    assert {username: role for username, (_a, _g, role) in OLD_USERS.items()}.items() <= highest.items()
    assert sum(username.startswith("demo_user_") for username in highest) == 6  # seed_demo's members
    memberships = query(
        url,
        "SELECT u.username, p.key, m.role FROM issues_membership m JOIN auth_user u ON u.id = m.user_id"
        " JOIN issues_project p ON p.id = m.project_id",
    )
    assert sorted(memberships) == sorted((username, "MAIN", role) for username, role in highest.items())
    assert [name for (name,) in query(url, "SELECT name FROM auth_group ORDER BY name")] == ["staff"]
    assert [g for u, g in migrated.after.groups if u == "old_staff"] == ["staff"]
    assert query(url, "SELECT is_staff FROM auth_user WHERE username = 'old_staff'") == [(True,)]
    manage(ROOT, url, ["migrate", "--check"])  # nothing left to apply


def test_old_role_holders_can_do_exactly_what_they_could_before(migrated, tmp_path):
    url = migrated.url
    n = len(migrated.before.issues)
    tokens = migrated.before.tokens
    with serving(ROOT, url, tmp_path) as base:
        # The project's sequence continues after the migrated numbers.
        first = session_for(tokens["old_member"]).post(
            f"{base}/api/issues", json={"title": "the first new"}, timeout=30
        )
        assert first.status_code == 201, first.text
        assert (first.json()["project"], first.json()["number"], first.json()["key"]) == (
            "MAIN",
            n + 1,
            f"MAIN-{n + 1}",
        )

        new_abilities = run_abilities(base, tokens, migrated.targets, "new")
        for username, expected in EXPECTED.items():
            got = new_abilities[username]
            assert {name: got[name] for name in expected} == expected, username
            assert got == migrated.old_abilities[username], username
        # Every old user sees every issue: MAIN is internal, and they are its members.
        total = query(url, "SELECT count(*) FROM issues_issue")[0][0]
        for token in tokens.values():
            listed = session_for(token).get(f"{base}/api/issues", timeout=30).json()
            assert listed["count"] == total
    numbers = [number for (number,) in query(url, "SELECT number FROM issues_issue ORDER BY number")]
    assert numbers == list(range(1, total + 1))  # every create and import since took the next numbers
    assert query(url, "SELECT DISTINCT p.key FROM issues_label l JOIN issues_project p ON p.id = l.project_id") == [
        ("MAIN",)
    ]
    kept, counted = tally_and_counts(url)
    assert kept == counted
