"""One PostgreSQL server on a data directory: initdb, start and stop with pg_ctl, its state, its database.

The lifecycle is plain ``initdb`` and ``pg_ctl``, so a server started by one command can be stopped by another.
The project's persistent cluster (cluster.py) and the throwaway one (throwaway.py) are both driven from here.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devdb.binaries import Account, is_root, owner_account, run_as, server_version, tool_env
from devdb.common import DevDbError

DEFAULT_DB = "issue_tracker"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
LOG_NAME = "server.log"
CONF_NAME = "devdb.conf"
PG_CTL_TIMEOUT = 60  # seconds for pg_ctl start/stop -w
# A Unix socket path is limited to 107 bytes (sun_path); past that the server listens on TCP only.
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    socket_dir: str
    status: str


# --- state of a data directory -------------------------------------------------------------------------------


def pid_alive(pid: int, data_dir: Path | None = None) -> bool:
    """Whether ``pid`` is a live postgres process (and, given ``data_dir``, the postmaster of that directory: it
    runs with the data directory as its working directory, so a stale pid file naming another server's pid, after
    a crash or a reboot, is not taken for a running cluster)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                return False
            if data_dir is not None:
                return Path(os.readlink(proc / "cwd")).resolve() == data_dir.resolve()
        except PermissionError:
            return True  # another user's process: it is a postgres; which directory it serves cannot be read
        except OSError:
            return False
    return True


def running(data_dir: Path) -> Running | None:
    """The server of `data_dir` as postmaster.pid describes it, if its process is alive."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise DevDbError(f"cannot read {data_dir / 'postmaster.pid'}: it belongs to another user") from None
    try:
        pid = int(lines[0])
        port = int(lines[3])
    except (IndexError, ValueError):
        return None  # being written or stale
    if not pid_alive(pid, data_dir):
        return None
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    status = lines[7].strip() if len(lines) > 7 else ""
    return Running(pid=pid, port=port, socket_dir=socket_dir, status=status)


def url_for(port: int, db: str) -> str:
    return f"postgres://{SUPERUSER}@{HOST}:{port}/{db}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as postgres binds
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def configured_db() -> str:
    name = os.environ.get("EMBEDDED_PG_DB") or DEFAULT_DB
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise DevDbError(f"EMBEDDED_PG_DB={name!r} is not a plain database name")
    return name


# --- init, start, stop ---------------------------------------------------------------------------------------


def init_cluster(bindir: Path, data_dir: Path, account: Account | None, *, throwaway: bool) -> None:
    major = server_version(bindir).split(".")[0]
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        found = version_file.read_text().strip()
        if found != major:
            raise DevDbError(
                f"{data_dir} holds a PostgreSQL {found} cluster and the embedded server is {major}: "
                "move it away or delete it to start afresh"
            )
        return
    if any(data_dir.iterdir()):
        raise DevDbError(f"{data_dir} is neither empty nor a PostgreSQL data directory")
    if account is not None:
        os.chown(data_dir, account.uid, account.gid)
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(data_dir),
        "--username",
        SUPERUSER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        # Code-point order and Unicode case mapping without depending on the machine's locales (PostgreSQL 17+).
        "--locale",
        "C",
        "--locale-provider",
        "builtin",
        "--builtin-locale",
        "C.UTF-8",
        "--no-instructions",
    ]
    if throwaway:
        cmd += ["--no-sync", "--no-data-checksums"]
    result = run_as(account, cmd, timeout=120)
    if result.returncode != 0:
        raise DevDbError(f"initdb failed: {last_error(result.stderr or result.stdout)}")
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"\n# devdb writes address, port, socket folder at each start.\ninclude_if_exists '{CONF_NAME}'\n")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_conf(data_dir: Path, account: Account | None, port: int, socket_dir: Path | None, throwaway: bool) -> None:
    lines = [
        "# Written by devdb at each start; edits are lost.",
        f"listen_addresses = {_quote(HOST)}",
        f"port = {port}",
        f"unix_socket_directories = {_quote(str(socket_dir) if socket_dir else '')}",
    ]
    if throwaway:  # a cluster that is deleted after the run needs no crash safety
        lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    conf = data_dir / CONF_NAME
    conf.write_text("\n".join(lines) + "\n")
    if account is not None:
        os.chown(conf, account.uid, account.gid)


def socket_dir_for(folder: Path, port: int) -> Path | None:
    return folder if len(str(folder / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH else None


def last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"\b(FATAL|PANIC|ERROR|error)\b", line):
            return line
    return lines[-1] if lines else "no message"


def start_server(
    bindir: Path, data_dir: Path, account: Account | None, port: int, socket_dir: Path | None, *, throwaway: bool
) -> Running:
    write_conf(data_dir, account, port, socket_dir, throwaway)
    log = data_dir / LOG_NAME
    if log.exists() and log.stat().st_size > 10 * 1024 * 1024:
        log.unlink()  # keep the persistent cluster's log from growing without end
    log_start = log.stat().st_size if log.exists() else 0
    cmd = [str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-w", "-t", str(PG_CTL_TIMEOUT), "-s", "start"]
    result = run_as(account, cmd, timeout=PG_CTL_TIMEOUT + 10)
    info = running(data_dir)
    if result.returncode != 0 or info is None:
        try:
            with log.open() as handle:
                handle.seek(log_start)
                text = handle.read()
        except OSError:
            text = ""
        reason = last_error(text or result.stderr or result.stdout)
        raise DevDbError(f"PostgreSQL did not start on {HOST}:{port}: {reason} (log: {log})")
    return info


def stop_server(bindir: Path, data_dir: Path, *, mode: str = "fast") -> bool:
    """Stop the server of `data_dir`; False when it was not running."""
    info = running(data_dir)
    if info is None:
        return False
    account = owner_account(data_dir) if is_root() else None
    cmd = [str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", mode, "-w", "-t", str(PG_CTL_TIMEOUT), "-s", "stop"]
    result = run_as(account, cmd, timeout=PG_CTL_TIMEOUT + 10)
    if result.returncode != 0 and running(data_dir) is not None:
        raise DevDbError(f"pg_ctl stop failed: {last_error(result.stderr or result.stdout)}")
    return True


def ensure_database(bindir: Path, port: int, db: str) -> None:
    """CREATE DATABASE `db` unless it exists (the bundled psql as a client: it may run as root)."""
    env = tool_env()
    env["PGCONNECT_TIMEOUT"] = "10"
    base = [str(bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(port)]
    base += ["-U", SUPERUSER, "-d", "postgres", "-c"]
    check = subprocess.run(
        [*base, f"SELECT 1 FROM pg_database WHERE datname = '{db}'"], capture_output=True, text=True, env=env
    )
    if check.returncode != 0:
        raise DevDbError(f"could not query the server on port {port}: {last_error(check.stderr)}")
    if check.stdout.strip() == "1":
        return
    create = subprocess.run([*base, f'CREATE DATABASE "{db}"'], capture_output=True, text=True, env=env)
    if create.returncode != 0 and "already exists" not in create.stderr:
        raise DevDbError(f"could not create database {db}: {last_error(create.stderr)}")
