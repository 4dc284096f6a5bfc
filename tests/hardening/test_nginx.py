"""Production serving as it is really done: nginx (deploy/nginx.conf) in front of gunicorn (deploy/gunicorn.conf.py,
2 sync workers), real processes and real sockets, against the test database.

- Slow clients (slowloris: a request sent a byte a second, in the headers or in the body) are held by nginx, and
  requests from everyone else keep their latency; sent straight to gunicorn, the same ten connections stop it.
- What nginx refuses itself (a long URL, a long header, a big body, gunicorn down) is answered in the API's JSON.
- X-Forwarded-For and X-Forwarded-Proto are nginx's, whatever the client sends.

Without nginx these tests skip on a developer machine and fail in CI (tests/servers.py, ``unavailable``).
"""

import http.client
import json
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.factories import IssueFactory, UserFactory
from tests.helpers import token_key
from tests.servers import (
    GunicornServer,
    NginxServer,
    nginx_stack_fixture,  # noqa: F401 - the nginx_stack fixture, for the test that stops gunicorn
    serve_behind_nginx,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SLOW_CLIENTS = 10
SAMPLES = 15  # sequential requests per endpoint in a row
SIEGES = 2  # rows measured with slow clients, between SIEGES + 1 rows without


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory) -> Iterator[tuple[GunicornServer, NginxServer]]:
    """One gunicorn (2 sync workers) + nginx for the tests that leave both running (rows are per test)."""
    with serve_behind_nginx(tmp_path_factory.mktemp("stack")) as pair:
        yield pair


@pytest.fixture
def token() -> str:
    user = UserFactory(username="nginx-member", role="member")
    IssueFactory.create_batch(25, reporter=user)  # more than a page: the list has a `next` link
    return token_key(user)


class Slowloris:
    """``count`` connections that each send a request a byte a second and never finish it: half stop inside the
    headers, half inside a declared 100 KB body of an authenticated POST /api/issues (which Django would read)."""

    def __init__(self, port: int, token: str, count: int = SLOW_CLIENTS, ca_file: str | None = None) -> None:
        self.port, self.token, self.count, self.ca_file = port, token, count, ca_file
        self.sockets: list[socket.socket] = []
        self.bytes_dripped = 0
        self.errors: list[OSError] = []
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.drip, daemon=True)

    def __enter__(self) -> "Slowloris":
        for i in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.ca_file:
                sock = ssl.create_default_context(cafile=self.ca_file).wrap_socket(sock, server_hostname="127.0.0.1")
            if i % 2 == 0:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            else:
                sock.sendall(
                    b"POST /api/issues HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Authorization: Token " + self.token.encode() + b"\r\nContent-Length: 100000\r\n\r\n"
                    b'{"title": "'
                )
            self.sockets.append(sock)
        self.thread.start()
        return self

    def drip(self) -> None:
        while not self.stopped.wait(1.0):
            with self.lock:
                for sock in self.sockets:
                    try:
                        sock.sendall(b"a")
                        self.bytes_dripped += 1
                    except OSError as exc:
                        self.errors.append(exc)

    def still_waiting(self) -> int:
        """Connections the server has neither answered nor closed: a read finds nothing (TLS session tickets
        aside, which the ssl module consumes), rather than an answer or the end of the stream."""
        waiting = 0
        with self.lock:  # not while the drip thread writes
            for sock in self.sockets:
                sock.settimeout(0)
                try:
                    sock.recv(1)
                except (BlockingIOError, ssl.SSLWantReadError):
                    waiting += 1
                except OSError:
                    pass
                finally:
                    sock.settimeout(5)
        return waiting

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def timings_ms(session: requests.Session, url: str, headers: dict[str, str] | None = None) -> list[float]:
    """Latencies of SAMPLES sequential GETs of ``url``, each of which must answer 200."""
    timings = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        response = session.get(url, headers=headers, timeout=10)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return timings


def raw_request(proxy: NginxServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is to nginx over https and read one answer (as far as its Content-Length)."""
    sock = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    with ssl.create_default_context(cafile=proxy.ca_file).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(data)
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def assert_json_answer(status: int, headers, body: bytes, expected_status: int, code: str) -> dict:
    assert status == expected_status, (status, body[:300])
    assert headers["content-type"] == "application/json", headers
    payload = json.loads(body)
    assert payload["code"] == code, payload
    assert isinstance(payload["detail"], str) and payload["detail"], payload
    return payload


def test_slow_clients_wait_in_nginx_not_in_the_workers(stack, token):
    app, proxy = stack
    assert len(app.worker_pids()) == 2
    auth = {"Authorization": f"Token {token}"}
    via_nginx, direct = proxy.session(), app.session()
    figures: dict[str, float] = {}

    endpoints = {"health": ("/api/health", None), "issues": ("/api/issues", auth)}
    for _ in range(5):  # warm up: connections, prepared statements
        via_nginx.get(f"{proxy.https_url}/api/issues", headers=auth, timeout=10)
    # Rows with and without slow clients, alternated (calm, siege, calm, ..., calm) so that the drift of a shared
    # machine falls on both alike. Each siege is ten new slow connections, checked to be unanswered at its end.
    calm: dict[str, list[float]] = {name: [] for name in endpoints}
    besieged: dict[str, list[float]] = {name: [] for name in endpoints}
    held_by_nginx = []
    for siege in range(SIEGES + 1):
        for name, (path, headers) in endpoints.items():
            calm[name] += timings_ms(via_nginx, f"{proxy.https_url}{path}", headers)
        if siege == SIEGES:
            break
        with Slowloris(proxy.https_port, token, ca_file=proxy.ca_file) as slow:
            time.sleep(1.1)  # a byte dripped on each
            for name, (path, headers) in endpoints.items():
                besieged[name] += timings_ms(via_nginx, f"{proxy.https_url}{path}", headers)
            held_by_nginx.append(slow.still_waiting())
            assert slow.bytes_dripped >= SLOW_CLIENTS and not slow.errors, (slow.bytes_dripped, slow.errors)
    assert held_by_nginx == [SLOW_CLIENTS] * SIEGES
    for name in endpoints:
        figures[f"nginx {name}"] = statistics.median(calm[name])
        figures[f"nginx {name}, 10 slow clients"] = statistics.median(besieged[name])

    # The same slow clients sent straight to gunicorn: both workers are stuck reading them, nothing else is served.
    direct_headers = {**auth, "X-Forwarded-Proto": "https"}  # as nginx would send it
    for name, (path, headers) in endpoints.items():
        headers = direct_headers if headers else None
        rows = [timing for _ in range(SIEGES + 1) for timing in timings_ms(direct, f"{app.url}{path}", headers)]
        figures[f"direct {name}"] = statistics.median(rows)
    with Slowloris(app.port, token) as slow:
        time.sleep(1.1)
        start = time.perf_counter()
        with pytest.raises(requests.Timeout):
            app.session().get(f"{app.url}/api/health", timeout=2)
        figures["direct health, 10 slow clients: no answer after (ms)"] = (time.perf_counter() - start) * 1000
        held_by_gunicorn = slow.still_waiting()
    assert held_by_gunicorn == SLOW_CLIENTS
    start = time.perf_counter()  # once the slow clients hang up, gunicorn serves again at once
    assert direct.get(f"{app.url}/api/health", timeout=5).status_code == 200
    figures["direct health after the slow clients hung up (ms)"] = (time.perf_counter() - start) * 1000

    print(f"\nmedian latency (ms) of {SIEGES * SAMPLES}-{(SIEGES + 1) * SAMPLES} sequential requests, 2 sync workers:")
    for name, value in figures.items():
        print(f"  {name}: {value:.1f}")
    for name in endpoints:
        assert figures[f"nginx {name}, 10 slow clients"] <= 2 * figures[f"nginx {name}"], (name, figures)


def test_oversized_requests_get_json_from_nginx(stack, token):
    app, proxy = stack
    session = proxy.session()

    # (b) a 20 KB URL
    response = session.get(f"{proxy.https_url}/api/issues?q={'x' * 20_000}", timeout=10)
    assert_json_answer(response.status_code, response.headers, response.content, 414, "request_uri_too_long")
    # (c) a 64 KB header
    response = session.get(f"{proxy.https_url}/api/health", headers={"X-Big": "x" * 65_536}, timeout=10)
    assert_json_answer(response.status_code, response.headers, response.content, 431, "request_header_too_large")
    # (d) a body over the 1 MB limit: refused on its Content-Length, before a byte of it is read
    head = f"POST /api/issues HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
    status, headers, body = raw_request(proxy, f"{head}Content-Length: 2000000\r\n\r\n".encode())
    assert_json_answer(status, headers, body, 413, "request_too_large")
    # ... and one over the import's 20 MB
    head = head.replace("/api/issues ", "/api/issues/import ")
    status, headers, body = raw_request(proxy, f"{head}Content-Length: {20 * 1024 * 1024 + 1}\r\n\r\n".encode())
    assert_json_answer(status, headers, body, 413, "request_too_large")
    # A 2 MB import body is within the import's limit: it reaches Django (a member may not import: 403).
    response = session.post(
        f"{proxy.https_url}/api/issues/import",
        headers={"Authorization": f"Token {token}", "Content-Type": "text/csv"},
        data=b"title\n" + b"x" * (2 * 1024 * 1024),
        timeout=30,
    )
    assert_json_answer(response.status_code, response.headers, response.content, 403, "permission_denied")

    # No gap between nginx's limits and gunicorn's (whose refusals are plain text): around nginx's 8 KB, a URL or
    # a header line either reaches Django or is refused by nginx, in JSON both ways; so do 300 small headers.
    for size in range(8_100, 8_260, 10):
        response = session.get(f"{proxy.https_url}/api/{'x' * size}", timeout=10)
        assert response.status_code in (404, 414), (size, response.status_code, response.text[:200])
        assert response.headers["Content-Type"] == "application/json", (size, response.text[:200])
        response = session.get(f"{proxy.https_url}/api/health", headers={"X-Big": "x" * size}, timeout=10)
        assert response.status_code in (200, 431), (size, response.status_code, response.text[:200])
        assert response.headers["Content-Type"] == "application/json", (size, response.text[:200])
    many = {f"X-Extra-{i}": "1" for i in range(300)}
    response = session.get(f"{proxy.https_url}/api/health", headers=many, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"status": "ok", "database": "ok"}
    assert app.proc.poll() is None


def test_forwarded_headers_come_from_nginx_not_from_the_client(stack, token):
    app, proxy = stack
    forged = {
        "Authorization": f"Token {token}",
        "X-Forwarded-For": "203.0.113.66",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Ssl": "on",
        "X-Forwarded-Host": "evil.example",
    }
    logged_before = len(app.access_log.read_text().splitlines())
    session = proxy.session()
    # Plain http with forged headers: Django still sees http, and the host and port the client connected to.
    response = session.get(f"{proxy.http_url}/api/issues?probe=forwarded", headers=forged, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["next"].startswith(f"{proxy.http_url}/api/issues?"), response.json()["next"]
    # https: the scheme reaches Django (DJANGO_SECURE_PROXY_SSL_HEADER=1), with the port in the links.
    response = session.get(f"{proxy.https_url}/api/issues?probe=forwarded", headers=forged, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["next"].startswith(f"{proxy.https_url}/api/issues?"), response.json()["next"]
    # gunicorn's access log starts each line with X-Forwarded-For as it arrived: nginx's $remote_addr, alone.
    deadline = time.monotonic() + 5
    while True:  # gunicorn writes the line once the answer is sent
        lines = app.access_log.read_text().splitlines()[logged_before:]
        probes = [line for line in lines if "probe=forwarded" in line]
        if len(probes) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(probes) == 2, lines
    assert all(line.startswith("127.0.0.1 - ") for line in probes), probes
    assert "203.0.113.66" not in "\n".join(lines)


def test_upstream_down_is_a_json_502(nginx_stack, token):
    app, proxy = nginx_stack
    session = proxy.session()
    assert session.get(f"{proxy.https_url}/api/health", timeout=10).status_code == 200
    app.stop()
    assert app.proc.returncode is not None
    for method, path in (("GET", "/api/health"), ("GET", "/api/issues"), ("POST", "/api/issues")):
        response = session.request(
            method, f"{proxy.https_url}{path}", headers={"Authorization": f"Token {token}"}, json={}, timeout=10
        )
        assert_json_answer(response.status_code, response.headers, response.content, 502, "bad_gateway")
        assert response.headers["Retry-After"] == "5"
