"""A throwaway cluster around one command: ``python -m devdb throwaway -- CMD...`` (``make test``).

CMD runs with ``DATABASE_URL`` pointing at a fresh cluster in a temporary folder on a free port; the cluster is
stopped and the folder removed afterwards, also on Ctrl-C or SIGTERM. Folders left by a killed devdb are swept
at the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from devdb.binaries import bin_dir, configured_account, is_root, make_binaries_reachable, make_reachable, server_version
from devdb.common import DevDbError, note
from devdb.server import (
    configured_db,
    ensure_database,
    free_port,
    init_cluster,
    pid_alive,
    port_free,
    running,
    socket_dir_for,
    start_server,
    stop_server,
    url_for,
)

THROWAWAY_PREFIX = "devdb-throwaway-"


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
                if not pid_alive(info.pid):
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
