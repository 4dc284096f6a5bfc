"""Issue numbers per project and issues named by key.

Over real HTTP against a live server, with threads released together and a second database connection holding
locks: concurrent creators in one project get distinct consecutive numbers; creators in two projects never wait
for each other, nor do creators wait for an open import in their own project (numbers come from a sequence,
which locks nothing); a number taken by a create that rolled back is never given again. With the test client:
every issue route takes the key (``WEB-3``, any case) as well as the id, and the key of an issue in a project the
caller cannot see is answered exactly like a key that names nothing.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection
from django.db.models import Sum

from issues.models import Comment, Issue, IssueEvent, IssueTally, Label, Project, Role, Visibility
from tests.factories import IssueFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import auth_header, make_client, released_together
from tests.servers import database_url

CREATORS = 32
TALLY_SLOTS = 16  # IssueTally: each backend adds to the slot pg_backend_pid() % 16 of its project


@pytest.fixture
def web(db):
    return ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)


@pytest.fixture
def ops(db):
    return ProjectFactory(key="OPS", visibility=Visibility.PRIVATE)


@pytest.fixture
def racer(db, web: Project, ops: Project) -> dict[str, str]:
    """The Authorization header of a member of WEB and OPS (and, as everybody, a viewer of the internal MAIN)."""
    user = UserFactory(username="racer", role=Role.MEMBER, role__project=web)
    add_member(user, ops, Role.MEMBER)
    return auth_header(user)


class Sessions:
    """One requests session per thread, authenticated with ``header``."""

    def __init__(self, header: dict[str, str]) -> None:
        self.header = header
        self.local = threading.local()

    def get(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.trust_env = False
            self.local.session.headers.update(self.header)
        return self.local.session


def create(session: requests.Session, base: str, project: str, title: str, **fields: Any) -> requests.Response:
    return session.post(f"{base}/api/issues", json={"project": project, "title": title, **fields}, timeout=60)


def numbers_in(project: Project) -> list[int]:
    return sorted(Issue.objects.filter(project=project).values_list("number", flat=True))


def assert_tally_exact() -> None:
    """The kept tally of every project equals COUNT(*) of its issues."""
    kept = dict(IssueTally.objects.values("project_id").annotate(n=Sum("issues")).values_list("project_id", "n"))
    counted = {p.pk: Issue.objects.filter(project=p).count() for p in Project.objects.all()}
    assert {pk: kept.get(pk, 0) for pk in counted} == counted


def lock_timeout_seconds() -> float:
    """The lock timeout every connection of the app (the live server's included) starts with."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::int FROM pg_settings WHERE name = 'lock_timeout'")
        milliseconds = cursor.fetchone()[0]
    assert milliseconds > 0, "the app's connections must bound lock waits for this test to end"
    return milliseconds / 1000


def waiters_on(pid: int) -> int:
    """How many backends wait for a lock that the backend ``pid`` holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid])
        return cursor.fetchone()[0]


def wait_for_waiter(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while waiters_on(pid) == 0:
        assert time.monotonic() < deadline, f"nothing came to wait for the lock of backend {pid}"
        time.sleep(0.02)


@pytest.fixture
def holder(django_db_setup: None) -> Iterator[psycopg.Connection]:
    """A second connection to the test database, in a transaction from its first statement (rolled back at the
    end): it holds what an A-creator, an import or another session would hold."""
    conn = psycopg.connect(database_url())
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


INSERT_HELD = (
    "INSERT INTO issues_issue (project_id, number, title, description, status, priority, version, created_at,"
    " updated_at) SELECT %s, n, 'held', '', 'open', 'medium', 1, now(), now() FROM unnest(%s::bigint[]) AS n"
    " RETURNING number"
)


def hold_numbers(conn: psycopg.Connection, project: Project, count: int, *, insert: bool) -> list[int]:
    """In ``conn``'s open transaction: take ``count`` numbers of ``project`` in one statement, as the import does
    for a batch, and (``insert``) write issues with them, as its COPY does; nothing is committed."""
    numbers = [
        row[0]
        for row in conn.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            [f"issues_project_{project.pk}_number_seq", count],
        )
    ]
    if insert:
        written = [row[0] for row in conn.execute(INSERT_HELD, [project.pk, numbers])]
        assert sorted(written) == sorted(numbers)
    return numbers


# --- races over HTTP -------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_creators_get_distinct_consecutive_numbers(live_server, racer, web, ops):
    sessions = Sessions(racer)
    base = live_server.url
    first = create(sessions.get(), base, "WEB", "before the race")
    assert first.status_code == 201, first.text
    assert (first.json()["number"], first.json()["key"]) == (1, "WEB-1")

    # 32 creators in WEB, released together (the key in any case).
    answers = released_together(
        CREATORS, lambda i: create(sessions.get(), base, "web" if i % 2 else "WEB", f"racer {i}")
    )
    assert [a.status_code for a in answers] == [201] * CREATORS, [a.text[:200] for a in answers if a.status_code != 201]
    bodies = [a.json() for a in answers]
    numbers = sorted(body["number"] for body in bodies)
    assert set(numbers) == set(range(numbers[0], numbers[0] + CREATORS)), numbers  # distinct and consecutive
    assert numbers[0] == 2  # right after the number given before the race
    assert all(body["key"] == f"WEB-{body['number']}" and body["project"] == "WEB" for body in bodies)
    assert len({body["id"] for body in bodies}) == CREATORS
    for body in bodies:
        assert Issue.objects.get(pk=body["id"]).number == body["number"]
    assert numbers_in(web) == list(range(1, CREATORS + 2))

    # Then 32 more, half in WEB and half in OPS, a third of them naming a label (Race or race): each project
    # numbers its own issues from where it was, and gets one label.
    def mixed(i: int) -> requests.Response:
        labels = {"labels": ["Race" if i % 4 < 2 else "race"]} if i % 3 == 0 else {}
        return create(sessions.get(), base, "WEB" if i % 2 == 0 else "OPS", f"mixed {i}", **labels)

    answers = released_together(CREATORS, mixed)
    assert [a.status_code for a in answers] == [201] * CREATORS, [a.text[:200] for a in answers if a.status_code != 201]
    by_project: dict[str, list[int]] = {"WEB": [], "OPS": []}
    for answer in answers:
        body = answer.json()
        by_project[body["project"]].append(body["number"])
        assert body["key"] == f"{body['project']}-{body['number']}"
    half = CREATORS // 2
    assert sorted(by_project["WEB"]) == list(range(CREATORS + 2, CREATORS + 2 + half))
    assert sorted(by_project["OPS"]) == list(range(1, half + 1))
    assert numbers_in(web) == list(range(1, CREATORS + 2 + half))
    assert numbers_in(ops) == list(range(1, half + 1))
    for project in (web, ops):
        assert list(Label.objects.filter(project=project).values_list("name", flat=True)) in (["Race"], ["race"])
    assert_tally_exact()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_lock_held_in_one_project_does_not_block_creates_in_another(live_server, racer, web, ops, holder):
    """A transaction holds WEB's row (``FOR UPDATE``, which every WEB insert's foreign-key check must wait for) and
    an uncommitted WEB issue with a number from WEB's sequence. A create in WEB waits for it until the lock
    timeout (a 503, the number it took lost); a create in OPS meanwhile answers 201 at once."""
    timeout = lock_timeout_seconds()
    sessions = Sessions(racer)
    base = live_server.url
    assert create(sessions.get(), base, "WEB", "WEB-1").json()["number"] == 1

    holder.execute("SELECT id FROM issues_project WHERE id = %s FOR UPDATE", [web.pk])
    (held,) = hold_numbers(holder, web, 1, insert=True)
    assert held == 2
    holder_pid = holder.info.backend_pid

    def create_in_web() -> tuple[requests.Response, float]:
        started = time.monotonic()
        return create(sessions.get(), base, "WEB", "waits for the held row"), time.monotonic() - started

    with ThreadPoolExecutor(max_workers=1) as pool:
        in_web = pool.submit(create_in_web)
        wait_for_waiter(holder_pid, timeout=timeout)  # the WEB create is now queued behind the held lock

        started = time.monotonic()
        in_ops = create(sessions.get(), base, "OPS", "does not wait")
        elapsed = time.monotonic() - started
        # Answered while the WEB transaction is still open: had it waited, it would be a 503 after the timeout.
        assert in_ops.status_code == 201, in_ops.text
        assert (in_ops.json()["key"], in_ops.json()["number"]) == ("OPS-1", 1)
        assert elapsed < timeout / 2, f"a create in OPS took {elapsed:.2f}s (lock timeout {timeout}s)"
        assert not in_web.done()

        web_answer, web_waited = in_web.result(timeout=timeout * 4)
    assert web_answer.status_code == 503, web_answer.text
    assert web_answer.json()["code"] == "database_busy"
    assert web_waited >= timeout * 0.9  # it did wait for the lock, to the end
    holder.rollback()

    # Neither the rolled-back insert's number (2) nor the timed-out create's (3) is given again.
    after = create(sessions.get(), base, "WEB", "after the rollback")
    assert after.status_code == 201, after.text
    assert (after.json()["number"], after.json()["key"]) == (4, "WEB-4")
    assert numbers_in(web) == [1, 4]
    assert numbers_in(ops) == [1]
    listed = sessions.get().get(f"{base}/api/issues", params={"project": "WEB"}, timeout=30).json()
    assert sorted(item["key"] for item in listed["results"]) == ["WEB-1", "WEB-4"]
    assert listed["count"] == 2
    assert_tally_exact()


@pytest.fixture
def connections_in_every_slot(django_db_setup: None) -> Iterator[list[psycopg.Connection]]:
    """TALLY_SLOTS connections to the test database whose backends fall in different tally slots (each rolled back
    and closed at the end)."""
    by_slot: dict[int, psycopg.Connection] = {}
    try:
        for _ in range(20 * TALLY_SLOTS):
            conn = psycopg.connect(database_url())
            slot = conn.info.backend_pid % TALLY_SLOTS
            if slot in by_slot:
                conn.close()
            else:
                by_slot[slot] = conn
            if len(by_slot) == TALLY_SLOTS:
                break
        assert len(by_slot) == TALLY_SLOTS, "could not open a connection in every tally slot"
        yield list(by_slot.values())
    finally:
        for conn in by_slot.values():
            conn.rollback()
            conn.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_numbers_held_by_open_transactions_do_not_block_creates(live_server, racer, web, holder):
    """A transaction took a batch of WEB's numbers and has not ended: a create in WEB answers 201 at once with the
    next number, and the batch's numbers are never given again."""
    timeout = lock_timeout_seconds()
    sessions = Sessions(racer)
    base = live_server.url
    assert create(sessions.get(), base, "WEB", "WEB-1").json()["number"] == 1
    assert hold_numbers(holder, web, 5, insert=False) == [2, 3, 4, 5, 6]

    started = time.monotonic()
    answer = create(sessions.get(), base, "WEB", "while numbers are held")
    elapsed = time.monotonic() - started
    assert answer.status_code == 201, f"{answer.status_code} after {elapsed:.2f}s: {answer.text[:300]}"
    assert answer.json()["key"] == "WEB-7"
    assert elapsed < timeout / 2, f"a create in WEB took {elapsed:.2f}s (lock timeout {timeout}s)"
    holder.rollback()
    assert create(sessions.get(), base, "WEB", "after").json()["key"] == "WEB-8"
    assert numbers_in(web) == [1, 7, 8]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_open_imports_in_a_project_do_not_block_creates_in_it(live_server, racer, web, connections_in_every_slot):
    """Imports into WEB are under way: transactions that each took a batch of WEB's numbers in one statement and
    wrote issues with them (as the import's COPY does), uncommitted, from backends in every tally slot (a real
    import is one of them; whichever backend serves the create, one of these shares its slot). A create in WEB
    answers 201 at once with the next free number; the imports' numbers are never given again."""
    timeout = lock_timeout_seconds()
    sessions = Sessions(racer)
    base = live_server.url
    assert create(sessions.get(), base, "WEB", "WEB-1").json()["number"] == 1
    held = [n for conn in connections_in_every_slot for n in hold_numbers(conn, web, 5, insert=True)]
    assert sorted(held) == list(range(2, 2 + 5 * TALLY_SLOTS))

    started = time.monotonic()
    answer = create(sessions.get(), base, "WEB", "while imports are open")
    elapsed = time.monotonic() - started
    assert answer.status_code == 201, f"{answer.status_code} after {elapsed:.2f}s: {answer.text[:300]}"
    assert answer.json()["number"] == max(held) + 1
    assert elapsed < timeout / 2, f"a create in WEB took {elapsed:.2f}s (lock timeout {timeout}s)"
    for conn in connections_in_every_slot:
        conn.rollback()
    assert numbers_in(web) == [1, max(held) + 1]
    assert_tally_exact()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_same_version_patches_by_key_exactly_one_wins(live_server, racer, web):
    threads, rounds = 16, 5
    sessions = [requests.Session() for _ in range(threads)]
    for session in sessions:
        session.trust_env = False
        session.headers.update(racer)
    IssueFactory(project=web, title="WEB-1, so that numbers and ids differ")
    for round_no in range(rounds):
        issue = IssueFactory(project=web, title="race")
        issue.refresh_from_db()
        # Mostly the key, in three spellings; one thread in four by id: all name the same row.
        names = [f"WEB-{issue.number}", f"web-{issue.number}", f"Web-{issue.number}", str(issue.pk)]

        def patch(i: int, names: list[str] = names, round_no: int = round_no) -> requests.Response:
            url = f"{live_server.url}/api/issues/{names[i % len(names)]}"
            return sessions[i].patch(url, json={"title": f"r{round_no}-t{i}", "version": 1}, timeout=30)

        responses = released_together(threads, patch)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * (threads - 1), codes
        winner = next(r for r in responses if r.status_code == 200).json()
        assert (winner["id"], winner["key"], winner["version"]) == (issue.pk, f"WEB-{issue.number}", 2)
        for loser in (r for r in responses if r.status_code == 409):
            body = loser.json()
            assert (body["code"], body["current_version"]) == ("version_conflict", 2)
            assert body["current"]["key"] == f"WEB-{issue.number}"
        issue.refresh_from_db()
        assert (issue.version, issue.title) == (2, winner["title"])
        assert IssueEvent.objects.filter(issue=issue).count() == 1


# --- issues named by key (test client) ------------------------------------------------------------------------


@pytest.fixture
def web_issues(web):
    """WEB-1 .. WEB-3, and DOCS-1 and DOCS-2 in an internal project: keys, not numbers, tell them apart. (Not the
    default project: its sequence outlives the rolled-back tests, so its numbers depend on the tests before.)"""
    docs = ProjectFactory(key="DOCS", visibility=Visibility.INTERNAL)
    IssueFactory(project=docs)
    IssueFactory(project=docs)
    issues = [IssueFactory(project=web, title=f"web {i}") for i in range(1, 4)]
    for issue in issues:
        issue.refresh_from_db()
    assert [issue.number for issue in issues] == [1, 2, 3]
    assert sorted(Issue.objects.filter(project=docs).values_list("number", flat=True)) == [1, 2]
    return issues


@pytest.fixture
def web_member(web: Project) -> Any:
    return UserFactory(username="web_member", role=Role.MEMBER, role__project=web)


def same_answer(a: Any, b: Any) -> None:
    assert (a.status_code, a["Content-Type"], a.content) == (b.status_code, b["Content-Type"], b.content)


def test_create_answers_the_key(web, web_member):
    default_project()  # internal: web_member is a viewer there
    client = make_client(web_member)
    for expected in (1, 2):
        answer = client.post("/api/issues", {"project": "web", "title": f"t{expected}"}, format="json")
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert (body["project"], body["number"], body["key"]) == ("WEB", expected, f"WEB-{expected}")
        assert answer["Location"].endswith(f"/api/issues/{body['id']}")
    main = client.post("/api/issues", {"title": "in the default project"}, format="json")
    assert main.status_code == 403  # a viewer of MAIN: the default project, and no right to write there
    assert Issue.objects.filter(project__key="MAIN").count() == 0


def test_get_by_key_equals_get_by_id(web_issues, web_member):
    client = make_client(web_member)
    issue = web_issues[2]
    by_id = client.get(f"/api/issues/{issue.pk}")
    assert by_id.status_code == 200
    assert by_id.json()["key"] == "WEB-3"
    for name in ("WEB-3", "web-3", "wEb-3"):
        by_key = client.get(f"/api/issues/{name}")
        same_answer(by_key, by_id)
        assert by_key["ETag"] == by_id["ETag"]
        assert client.get(f"/api/issues/{name}", HTTP_IF_NONE_MATCH=by_id["ETag"]).status_code == 304
    docs_2 = client.get("/api/issues/docs-2")  # another project's issue with a number WEB has too
    assert docs_2.status_code == 200
    assert docs_2.json()["key"] == "DOCS-2" and docs_2.json()["id"] != web_issues[1].pk


def test_key_of_an_invisible_project_is_404_like_a_key_that_names_nothing(web_issues, member, staff):
    """``member`` (of MAIN only) cannot see the private WEB: WEB-1 does not exist for them, on every route, with
    the same answer, byte for byte, as NOPE-1, DOCS-999 or an id that names nothing."""
    client = make_client(member)
    hidden = web_issues[0]
    unknown_id = Issue.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    writes = {
        "patch": lambda path: client.patch(path, {"title": "x", "version": 1}, format="json"),
        "labels": lambda path: client.put(f"{path}/labels", ["bug"], format="json"),
        "comment": lambda path: client.post(f"{path}/comments", {"body": "hello"}, format="json"),
    }
    reads = {
        "detail": lambda path: client.get(path),
        "comments": lambda path: client.get(f"{path}/comments"),
        "timeline": lambda path: client.get(f"{path}/timeline"),
    }
    for route, call in {**reads, **writes}.items():
        nothing = call("/api/issues/NOPE-1")
        assert nothing.status_code == 404, (route, nothing.content)
        for name in ("WEB-1", "web-1", "DOCS-999", str(unknown_id), str(hidden.pk)):
            answer = call(f"/api/issues/{name}")
            assert answer.status_code == 404, (route, name, answer.content)
            same_answer(answer, nothing)
    assert Comment.objects.count() == 0
    assert Label.objects.count() == 0
    hidden.refresh_from_db()
    assert (hidden.version, hidden.title) == (1, "web 1")
    # The route itself works: staff see WEB.
    assert make_client(staff).get("/api/issues/web-1").json()["id"] == hidden.pk


def test_issue_routes_take_the_key(web_issues, web_member):
    client = make_client(web_member)
    issue = web_issues[1]  # WEB-2; DOCS-2 exists too and must stay untouched
    other = Issue.objects.get(project__key="DOCS", number=2)

    patched = client.patch("/api/issues/web-2", {"title": "by key", "version": 1}, format="json")
    assert patched.status_code == 200, patched.content
    assert (patched.json()["id"], patched.json()["key"], patched.json()["version"]) == (issue.pk, "WEB-2", 2)
    stale = client.patch("/api/issues/WEB-2", {"title": "stale", "version": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["current"]["title"] == "by key"
    by_if_match = client.patch("/api/issues/Web-2", {"priority": "high"}, format="json", HTTP_IF_MATCH='"2"')
    assert by_if_match.status_code == 200 and by_if_match.json()["version"] == 3

    labelled = client.put("/api/issues/WEB-2/labels", ["Bug", "ui"], format="json")
    assert labelled.status_code == 200, labelled.content
    assert (labelled.json()["id"], labelled.json()["labels"], labelled.json()["version"]) == (
        issue.pk,
        ["Bug", "ui"],
        4,
    )
    assert set(Label.objects.values_list("project__key", "name")) == {("WEB", "Bug"), ("WEB", "ui")}

    commented = client.post("/api/issues/web-2/comments", {"body": "said by key"}, format="json")
    assert commented.status_code == 201, commented.content
    assert commented.json()["issue"] == issue.pk
    same_answer(client.get("/api/issues/WEB-2/comments"), client.get(f"/api/issues/{issue.pk}/comments"))
    assert [c["body"] for c in client.get("/api/issues/web-2/comments").json()["results"]] == ["said by key"]

    timeline = client.get("/api/issues/wEb-2/timeline")
    same_answer(timeline, client.get(f"/api/issues/{issue.pk}/timeline"))
    assert [event["type"] for event in timeline.json()["results"]] == [
        "title_changed",
        "priority_changed",
        "labels_changed",
        "commented",
    ]

    other.refresh_from_db()
    assert (other.version, other.comments.count(), other.labels.count()) == (1, 0, 0)
    assert IssueEvent.objects.filter(issue=other).count() == 0
