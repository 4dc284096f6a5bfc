"""Real servers for tests: gunicorn serving the production WSGI app against the pytest-django test database,
and nginx (deploy/nginx.conf, rendered with its own ports and paths) in front of it.

As context managers, for any settings::

    with gunicorn_server(workers=2, extra_env={"DJANGO_NUM_PROXIES": "1"}) as app:      # app.url
        with nginx_server(app.address) as proxy:                                        # proxy.https_url
            requests.get(f"{proxy.https_url}/api/health", verify=proxy.ca_file)

or as fixtures, made available to a test module by importing them (``from tests.servers import
nginx_stack_fixture  # noqa: F401``): ``gunicorn`` is the app alone with 2 sync workers, ``nginx_stack`` a pair
(gunicorn told it is behind one proxy: DJANGO_NUM_PROXIES=1, DJANGO_SECURE_PROXY_SSL_HEADER=1; nginx in front),
which ``serve_behind_nginx(directory)`` also gives as a context manager.

Tests using them need ``@pytest.mark.django_db(transaction=True)`` (gunicorn only sees committed rows) and
``@pytest.mark.slow``. Without nginx (or openssl, for the test certificate) ``nginx_stack`` skips on a developer
machine, saying why, and fails in CI.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest
import requests

from deploy.render_nginx import render
from tests import helpers

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
SECRET_KEY = "tests-servers-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-not-for-production"
BEHIND_PROXY = {"DJANGO_NUM_PROXIES": "1", "DJANGO_SECURE_PROXY_SSL_HEADER": "1"}


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine, saying why; fail in CI (CI=true or 1), where .ci/run installs nginx."""
    helpers.unavailable(
        "nginx tests", reason, "install Debian's package (`apt-get install nginx`) to run the nginx tests"
    )


def nginx_binary() -> str | None:
    candidates = [os.environ.get("NGINX_PATH"), shutil.which("nginx"), "/usr/sbin/nginx"]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """DATABASE_URL of the database this test process uses (pytest-django's test database once it is set up):
    for a server in another process, or for a second connection of this one (``psycopg.connect``)."""
    from django.db import connection

    settings = connection.settings_dict
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(settings.get("HOST") or "", safe="")  # a socket directory becomes %2F...
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings['NAME'], safe='')}"


def local_session(ca_file: str | None = None) -> requests.Session:
    """A requests session for a server of ours: no proxy and no CA bundle from the environment (REQUESTS_CA_BUNDLE
    would override ``verify``); https verified against ``ca_file``."""
    session = requests.Session()
    session.trust_env = False
    if ca_file:
        session.verify = ca_file
    return session


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop_process(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """``sig`` to the process we started, then SIGKILL to its process group (only its own children) if needed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class GunicornServer:
    port: int
    proc: subprocess.Popen
    log: Path  # gunicorn's and Django's own lines
    access_log: Path  # one line per request, the client address (X-Forwarded-For) first
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def session(self) -> requests.Session:
        return local_session()

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's children, from /proc."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM: running requests may finish), SIGKILL after 10 s."""
        stop_process(self.proc, signal.SIGTERM, timeout=10)


@contextmanager
def gunicorn_server(
    workers: int = 2, extra_env: dict[str, str] | None = None, directory: Path | None = None
) -> Iterator[GunicornServer]:
    """gunicorn with deploy/gunicorn.conf.py and ``workers`` sync workers on a free port, DEBUG off, throttles off,
    against the current test database; returns once /api/health answers 200. Logs go to ``directory``."""
    directory = Path(directory or tempfile.mkdtemp(prefix="gunicorn-"))
    directory.mkdir(parents=True, exist_ok=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "GUNICORN_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "issue_tracker.settings",
            "DATABASE_URL": database_url(),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_USER": "off",
            "THROTTLE_ANON": "off",
            "THROTTLE_AUTH": "off",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_ACCESS_LOG": str(directory / "gunicorn-access.log"),
            "GUNICORN_ERROR_LOG": "-",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra_env or {})
    server = None
    for _attempt in range(3):  # the free port may be taken between free_port() and gunicorn's bind
        port = free_port()
        log = directory / f"gunicorn-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)],
                cwd=ROOT,
                env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it touches nothing else
            )
        candidate = GunicornServer(port, proc, log, directory / "gunicorn-access.log")
        if wait_healthy(candidate):
            server = candidate
            break
        candidate.stop()
        if "Address already in use" not in tail(log):
            break
    if server is None:
        raise RuntimeError(f"gunicorn did not answer /api/health within 30 s; its log:\n{tail(log)}")
    try:
        yield server
    finally:
        server.stop()


def wait_healthy(server: GunicornServer, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            if local_session().get(f"{server.url}/api/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


@dataclass
class NginxServer:
    http_port: int
    https_port: int
    proc: subprocess.Popen
    directory: Path
    ca_file: str  # the self-signed certificate (CN localhost, SAN 127.0.0.1): requests' verify=
    http_url: str = field(init=False)
    https_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.https_url = f"https://127.0.0.1:{self.https_port}"

    def session(self) -> requests.Session:
        """A session trusting nginx's certificate (and nothing from the environment: no proxy, no CA bundle)."""
        return local_session(self.ca_file)

    @property
    def error_log(self) -> Path:
        return self.directory / "logs" / "error.log"

    def stop(self) -> None:
        """Graceful shutdown (SIGQUIT), SIGKILL after 10 s."""
        stop_process(self.proc, signal.SIGQUIT, timeout=10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("no openssl to make the test certificate")
    options = "-x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost"
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    command = [openssl, "req", *options.split(), "-addext", san, "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


@contextmanager
def nginx_server(upstream: str, directory: Path | None = None) -> Iterator[NginxServer]:
    """nginx with deploy/nginx.conf in front of ``upstream`` (host:port or unix:path), plain http and https on
    free ports, pid, logs, temp files and certificate in ``directory``; in the foreground (daemon off)."""
    binary = nginx_binary()
    if binary is None:
        unavailable("nginx is not installed (no nginx on PATH or at /usr/sbin/nginx)")
    directory = Path(directory or tempfile.mkdtemp(prefix="nginx-"))
    for sub in ("logs", "temp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(directory)
    server = None
    for _attempt in range(3):  # as for gunicorn: a free port may be taken before nginx binds it
        http_port, https_port = free_port(), free_port()
        conf = directory / "nginx.conf"
        conf.write_text(
            render(
                {
                    "TRACKER_NGINX_USER": pwd.getpwuid(os.getuid()).pw_name,  # ignored unless run as root
                    "TRACKER_PID_FILE": str(directory / "nginx.pid"),
                    "TRACKER_LOG_DIR": str(directory / "logs"),
                    "TRACKER_TEMP_DIR": str(directory / "temp"),
                    "TRACKER_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                    "TRACKER_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
                    "TRACKER_SERVER_NAME": "localhost",
                    "TRACKER_TLS_CERT": str(cert),
                    "TRACKER_TLS_KEY": str(key),
                    "TRACKER_UPSTREAM": upstream,
                }
            )
        )
        out_path = directory / "logs" / "nginx.out"
        with out_path.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    "-g",
                    "daemon off;",
                    "-c",
                    str(conf),
                    "-p",
                    str(directory),
                    "-e",
                    str(directory / "logs/error.log"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        candidate = NginxServer(http_port, https_port, proc, directory, str(cert))
        if wait_listening(proc, [http_port, https_port]):
            server = candidate
            break
        candidate.stop()
        if "Address already in use" not in tail(out_path) + tail(candidate.error_log):
            break
    if server is None:
        raise RuntimeError(f"nginx did not start; its output:\n{tail(out_path)}\n{tail(directory / 'logs/error.log')}")
    try:
        yield server
    finally:
        server.stop()


def wait_listening(proc: subprocess.Popen, ports: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def serve_behind_nginx(directory: Path) -> Iterator[tuple[GunicornServer, NginxServer]]:
    """gunicorn (2 sync workers, told it is behind one proxy) and nginx in front of it, logs in ``directory``."""
    if nginx_binary() is None:
        unavailable("nginx is not installed (no nginx on PATH or at /usr/sbin/nginx)")
    with (
        gunicorn_server(workers=2, extra_env=BEHIND_PROXY, directory=directory / "gunicorn") as app,
        nginx_server(app.address, directory=directory / "nginx") as proxy,
    ):
        yield app, proxy


@pytest.fixture(name="gunicorn")
def gunicorn_fixture(django_db_setup: None, tmp_path: Path) -> Iterator[GunicornServer]:
    """The production app alone: gunicorn, 2 sync workers, on a free port."""
    with gunicorn_server(workers=2, directory=tmp_path / "gunicorn") as server:
        yield server


@pytest.fixture(name="nginx_stack")
def nginx_stack_fixture(django_db_setup: None, tmp_path: Path) -> Iterator[tuple[GunicornServer, NginxServer]]:
    """gunicorn (2 sync workers, told it is behind one proxy) and nginx in front of it."""
    with serve_behind_nginx(tmp_path) as pair:
        yield pair
