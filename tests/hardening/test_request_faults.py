"""Faults a flaky network or a failing database causes, against a live server: a body cut short,
the import's connection killed mid-import, a held row lock, and forwarded addresses that must not dodge the
login throttle. Nothing half-written, never a 5xx that hides what happened, never a success that lies."""

import json
import socket
import threading
import time
import uuid

import psycopg
import pytest
import requests
from django.core.cache import cache
from django.db import connection

from issues.models import Issue, IssueEvent
from tests.factories import IssueFactory, UserFactory
from tests.helpers import assert_no_writes, csv_text, multipart_body, released_together, token_key
from tests.servers import database_url, gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def maintainer_token(db) -> str:
    return token_key(UserFactory(username="importer", role="maintainer"))


def send_cut_request(base_url: str, token: str, path: str, content_type: str, body: bytes, sent: int) -> bytes:
    """Announce ``len(body)`` bytes, send only the first ``sent`` of them, half-close, and return the answer
    (b"" when the server closed without answering)."""
    host, port = base_url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body[:sent])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def csv_body(rows: int) -> bytes:
    cells = [[f"Row {i}", "a description, with a comma", f"security-{i % 3};triage"] for i in range(rows)]
    return csv_text(cells, header=["title", "description", "labels"]).encode()


def assert_400_or_nothing(answer: bytes) -> None:
    if not answer:
        return  # the server may close without answering a client that stopped sending
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["code"] in ("incomplete_body", "parse_error", "bad_request"), body


def test_raw_csv_cut_short_writes_nothing_and_answers_400(live_server, maintainer_token) -> None:
    body = csv_body(200)
    inside_quoted_cell = body.index(b"a description, with") + 5  # cut in the middle of a quoted cell
    between_rows = body.index(b"\nRow 150,") + 1  # cut right after a complete row
    inside_label = body.index(b"security-", between_rows) + 8  # "security-" cut short: the defect's example
    for sent in (inside_quoted_cell, between_rows, inside_label, len(body) - 1):
        answer = send_cut_request(live_server.url, maintainer_token, "/api/issues/import", "text/csv", body, sent)
        assert answer, f"cut at {sent}: the server did not answer"
        assert_400_or_nothing(answer)
        assert_no_writes()
    # The same body sent whole is imported: the cut, not the content, was refused.
    whole = send_cut_request(live_server.url, maintainer_token, "/api/issues/import", "text/csv", body, len(body))
    assert whole.split()[1] == b"200"
    assert Issue.objects.count() == 200


def test_multipart_upload_cut_short_writes_nothing(live_server, maintainer_token) -> None:
    boundary = uuid.uuid4().hex
    body = multipart_body(csv_body(200), boundary)
    content_type = f"multipart/form-data; boundary={boundary}"
    between_rows = body.index(b"\nRow 120,") + 1
    before_final_boundary = body.rindex(b"\r\n--")
    for sent in (between_rows, before_final_boundary, len(body) - 3):
        answer = send_cut_request(live_server.url, maintainer_token, "/api/issues/import", content_type, body, sent)
        assert_400_or_nothing(answer)
        assert_no_writes()


def test_json_body_cut_short_is_a_400(live_server, maintainer_token) -> None:
    body = json.dumps({"title": "cut", "description": "x" * 2000}).encode()
    answer = send_cut_request(live_server.url, maintainer_token, "/api/issues", "application/json", body, 1000)
    assert_400_or_nothing(answer)
    assert answer, "a JSON body cut short is answered"
    assert_no_writes()


@pytest.mark.slow
def test_import_connection_killed_mid_import_answers_503_and_writes_nothing(live_server, maintainer_token) -> None:
    rows = 60_000  # several batches of 5,000: the kill lands after some were written inside the transaction
    boundary = uuid.uuid4().hex
    body = multipart_body(csv_body(rows), boundary)
    killed: list[int] = []

    def post_import() -> requests.Response:
        return requests.post(
            live_server.url + "/api/issues/import",
            data=body,
            headers={
                "Authorization": f"Token {maintainer_token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=120,
        )

    def kill_the_import() -> None:
        with psycopg.connect(database_url(), autocommit=True) as watcher:
            deadline = time.monotonic() + 60
            copies_seen = 0
            while time.monotonic() < deadline and not killed:
                found = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state = 'active' AND query LIKE 'COPY %%'"
                ).fetchall()
                if found:
                    copies_seen += 1
                    if copies_seen >= 3:  # a few batches in
                        watcher.execute("SELECT pg_terminate_backend(%s)", [found[0][0]])
                        killed.append(found[0][0])
                time.sleep(0.01)

    killer = threading.Thread(target=kill_the_import)
    killer.start()
    response = post_import()
    killer.join()
    assert killed, "the import's COPY was never seen running"
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "database_unavailable"
    assert "created" not in response.json()
    assert_no_writes()
    # The service is fine afterwards: the same file imports whole.
    again = post_import()
    assert again.status_code == 200, again.text[:300]
    assert again.json()["created"] == rows == Issue.objects.count()


def test_held_row_lock_answers_503_json_after_the_lock_timeout(client, maintainer_token) -> None:
    issue = IssueFactory(title="locked")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "30s"  # the defaults every connection starts with
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "2500ms"  # DB_LOCK_TIMEOUT_MS 5 s: half for each of a row's two waits
        cursor.execute("SET lock_timeout = '300ms'")  # this test's own connection: a shorter wait
    with psycopg.connect(database_url()) as holder:
        holder.execute("SELECT id FROM issues_issue WHERE id = %s FOR UPDATE", [issue.pk])
        started = time.monotonic()
        response = client.patch(
            f"/api/issues/{issue.pk}",
            {"title": "waits", "version": 1},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {maintainer_token}",
        )
        waited = time.monotonic() - started
        holder.rollback()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_busy"
    assert int(response["Retry-After"]) >= 1
    assert 0.3 <= waited < 2
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("locked", 1)
    assert IssueEvent.objects.filter(issue=issue).exclude(type="created").count() == 0


def test_statement_timeout_answers_503_json(client, maintainer_token) -> None:
    IssueFactory.create_batch(3)
    with connection.cursor() as cursor:
        # The test client's requests share this connection: no lock timeout, a 300 ms statement budget.
        cursor.execute("SET lock_timeout = 0")
        cursor.execute("SET statement_timeout = '300ms'")
    with psycopg.connect(database_url()) as holder:
        holder.execute("LOCK TABLE issues_issue IN ACCESS EXCLUSIVE MODE")  # the report's scan waits on it
        started = time.monotonic()
        response = client.get("/api/reports/latency", HTTP_AUTHORIZATION=f"Token {maintainer_token}")
        waited = time.monotonic() - started
        holder.rollback()
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout; RESET lock_timeout")
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_timeout"
    assert int(response["Retry-After"]) >= 1
    assert 0.3 <= waited < 2


def guesses(url: str, count: int, username: str = "victim") -> list[requests.Response]:
    """``count`` wrong passwords for ``username``, each claiming another X-Forwarded-For address."""
    with requests.Session() as session:
        return [
            session.post(
                url + "/api/auth/token",
                json={"username": username, "password": f"guess-{i}"},
                headers={"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.{i}"},
                timeout=10,
            )
            for i in range(count)
        ]


def test_forwarded_addresses_do_not_dodge_the_token_throttle(live_server, settings) -> None:
    # A day's window: the throttle counts in fixed windows, and a minute's could end during the 100 requests.
    settings.THROTTLE_RATES = {"anon": None, "user": None, "auth": "20/day"}
    settings.AXES_ENABLED = False  # the throttle alone (the lockout is the next test)
    cache.clear()
    UserFactory(username="victim", role="member")
    answers = guesses(live_server.url, 100)
    cache.clear()
    assert all(answer.headers["Content-Type"] == "application/json" for answer in answers)
    # DJANGO_NUM_PROXIES is 0: no forwarded address is trusted, so all 100 come from one client.
    assert [answer.status_code for answer in answers] == [400] * 20 + [429] * 80


def test_forwarded_addresses_do_not_dodge_the_login_lockout(live_server, settings) -> None:
    cache.clear()
    UserFactory(username="victim", role="member")
    answers = guesses(live_server.url, settings.AXES_FAILURE_LIMIT + 10)
    assert all(answer.headers["Content-Type"] == "application/json" for answer in answers)
    statuses = [answer.status_code for answer in answers]
    # The failure that reaches the limit is answered with the lockout already.
    assert statuses == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429] * 11
    assert answers[-1].json()["code"] == "locked_out"


@pytest.mark.slow
def test_held_row_lock_does_not_stop_the_service(maintainer_token, tmp_path) -> None:
    """gunicorn with 2 sync workers; a transaction holds an issue's row lock while 2 x 2 PATCHes hit that row.
    Each PATCH is answered JSON within the lock timeout plus a second of a worker taking it (gunicorn's own
    request time, from its access log), and health checks and reads keep being answered meanwhile."""
    workers, lock_timeout = 2, 2.0
    issue, other = IssueFactory(title="locked"), IssueFactory(title="free")
    headers = {"Authorization": f"Token {maintainer_token}"}
    with gunicorn_server(
        workers=workers, extra_env={"DB_LOCK_TIMEOUT_MS": str(int(lock_timeout * 1000))}, directory=tmp_path
    ) as app:
        with psycopg.connect(database_url()) as holder:
            holder.execute("SELECT id FROM issues_issue WHERE id = %s FOR UPDATE", [issue.pk])
            done = threading.Event()

            def patch(i: int) -> tuple[float, requests.Response]:
                started = time.monotonic()
                with requests.Session() as session:
                    answer = session.patch(
                        f"{app.url}/api/issues/{issue.pk}",
                        json={"title": "x", "version": 1},
                        headers=headers,
                        timeout=30,
                    )
                return time.monotonic() - started, answer

            others: list[tuple[float, int]] = []

            def keep_reading() -> None:
                with requests.Session() as session:
                    while not done.is_set():
                        for url in ("/api/health", f"/api/issues/{other.pk}"):
                            started = time.monotonic()
                            status = session.get(app.url + url, headers=headers, timeout=30).status_code
                            others.append((time.monotonic() - started, status))

            reader = threading.Thread(target=keep_reading)
            reader.start()
            patches = released_together(2 * workers, patch)
            done.set()
            reader.join()
            holder.rollback()
        # The lock is gone: the same PATCH now succeeds.
        assert requests.patch(
            f"{app.url}/api/issues/{issue.pk}", json={"title": "x", "version": 1}, headers=headers, timeout=10
        ).ok
        access = [line for line in app.access_log.read_text().splitlines() if f'"PATCH /api/issues/{issue.pk} ' in line]
    print(
        f"PATCH answers (client s): {sorted(round(t, 2) for t, _ in patches)}; gunicorn ms: "
        f"{[line.rsplit(' ', 1)[1] for line in access]}; other requests: {len(others)}, "
        f"slowest {max(t for t, _ in others):.2f} s"
    )
    assert len(patches) == 2 * workers
    for _, answer in patches:
        assert answer.status_code == 503
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json()["code"] == "database_busy"
        assert int(answer.headers["Retry-After"]) >= 1
    server_ms = [int(line.rsplit(" ", 1)[1].removesuffix("ms")) for line in access[: 2 * workers]]
    assert len(server_ms) == 2 * workers
    assert all(lock_timeout / 2 * 1000 <= ms <= (lock_timeout + 1) * 1000 for ms in server_ms), server_ms
    # Two waves at most (2 x workers requests on workers workers), each bounded by the lock timeout.
    assert max(t for t, _ in patches) <= 2 * (lock_timeout + 1)
    # Other requests are served throughout; the longest waited behind both waves of PATCHes for a worker.
    assert len(others) >= 10 and all(status == 200 for _, status in others)
    assert max(t for t, _ in others) <= 2 * lock_timeout + 0.5
    issue.refresh_from_db()
    assert issue.version == 2
