"""The project's persistent cluster (``.pgdata/``, port ``EMBEDDED_PG_PORT``): ``python -m devdb start|stop``.

``make run`` and ``make db-start`` start it; it keeps running until ``python -m devdb stop`` (``make db-stop``).
See docs/embedded-postgres.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from devdb.binaries import account_for, bin_dir, is_root, make_binaries_reachable, make_reachable, owner_account
from devdb.common import DevDbError
from devdb.server import (
    HOST,
    LOG_NAME,
    Running,
    configured_db,
    ensure_database,
    init_cluster,
    port_free,
    running,
    socket_dir_for,
    start_server,
    stop_server,
    url_for,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata"
DEFAULT_PORT = 54329


def configured_port() -> int:
    raw = os.environ.get("EMBEDDED_PG_PORT") or str(DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise DevDbError(f"EMBEDDED_PG_PORT={raw!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise DevDbError(f"EMBEDDED_PG_PORT={port} is outside 1024-65535")
    return port


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Serialise start/stop of one data directory (two `make run`s at once)."""
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def data_dir_from(arg: str | None) -> Path:
    raw = arg or os.environ.get("EMBEDDED_PG_DATA") or str(DEFAULT_DATA_DIR)
    return Path(raw).expanduser().absolute()


def start(data_dir: Path) -> tuple[str, bool]:
    """Start (initialising on first use) the cluster in `data_dir`; (DATABASE_URL, started_now)."""
    bindir = bin_dir()
    db = configured_db()
    if not data_dir.parent.is_dir():
        raise DevDbError(f"{data_dir.parent} does not exist")
    data_dir.mkdir(mode=0o700, exist_ok=True)
    with locked(data_dir):
        info = running(data_dir)
        if info is not None:
            ensure_database(bindir, info.port, db)
            return url_for(info.port, db), False
        port = configured_port()
        if not port_free(port):
            raise DevDbError(f"port {port} on {HOST} is in use by another program: set EMBEDDED_PG_PORT to a free port")
        account = account_for(data_dir)
        make_binaries_reachable(account, bindir)
        make_reachable(account, [data_dir], [])
        init_cluster(bindir, data_dir, account, throwaway=False)
        info = start_server(bindir, data_dir, account, port, socket_dir_for(data_dir, port), throwaway=False)
        ensure_database(bindir, info.port, db)
        return url_for(info.port, db), True


def stop(data_dir: Path) -> bool:
    if not data_dir.is_dir():
        return False
    bindir = bin_dir()
    with locked(data_dir):
        return stop_server(bindir, data_dir, mode="fast")


def describe(data_dir: Path, info: Running) -> list[str]:
    owner = ""
    if is_root():
        owner = f" (server runs as user {owner_account(data_dir).name})"
    socket_note = f", Unix socket in {info.socket_dir}" if info.socket_dir else ""
    return [
        f"  data dir  {data_dir}{owner}",
        f"  listens   {HOST}:{info.port}{socket_note}",
        f"  pid       {info.pid}",
        f"  log       {data_dir / LOG_NAME}",
    ]
