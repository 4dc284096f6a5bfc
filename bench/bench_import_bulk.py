"""Benchmark of the CSV import and the bulk status endpoint through HTTP, against a real server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/it_bulk_bench .venv/bin/python bench/bench_import_bulk.py

What it does (self-contained; run by hand, prints its figures):
1. recreates the scratch PostgreSQL database named in DATABASE_URL (it must not be a database you keep),
   migrates it and creates a maintainer user with a token;
2. starts gunicorn (2 sync workers, DJANGO_DEBUG off, a throwaway DJANGO_SECRET_KEY) on a free port;
3. imports a 100,000-row CSV (raw ``text/csv`` body, then the same file as multipart) and reports rows/s
   end to end (time from the first byte sent to the JSON answer);
4. imports a ~20 MB file and reports the growth of the serving worker's peak RSS (VmHWM) over its RSS
   before the request;
5. times bulk-status requests of 1,000 items (each one changes every item) and reports ms per request.

Options: ``--rows``, ``--bulk-rounds``, ``--keep-server`` (leave it running and print its URL).
"""

import argparse
import contextlib
import csv
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
HEADER = ["title", "description", "status", "priority", "assignee", "labels"]
STATUSES = ["open", "in_progress", "resolved", "closed"]
PRIORITIES = ["low", "medium", "high", "critical"]
LABELS = ["bug", "ui", "backend", "docs", "perf", "security", "api", "db"]


def make_csv(rows: int, *, description_size: int = 60, seed: int = 1) -> bytes:
    """A realistic CSV: varied titles, descriptions with commas and quotes, statuses, priorities,
    assignees by username, one to three labels per row."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    filler = 'Steps to reproduce, then "expected" versus actual behaviour. ' * (1 + description_size // 60)
    for i in range(rows):
        writer.writerow(
            [
                f"Imported issue {i}: {rng.choice(['crash', 'typo', 'timeout', 'layout'])} in module {i % 97}",
                filler[: rng.randint(description_size // 2, description_size)],
                rng.choice(STATUSES),
                rng.choice(PRIORITIES),
                rng.choice(["", "bench-alice", "bench-bob"]),
                ",".join(rng.sample(LABELS, rng.randint(0, 3))),
            ]
        )
    return out.getvalue().encode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def recreate_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith(("it_", "bench")) or name in ("postgres", "template0", "template1"):
        sys.exit(f"Refusing to drop {name!r}: use a scratch database whose name starts with it_ or bench.")
    import psycopg

    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker_pids(master_pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master_pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs), so the peak is this request's."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def wait_until_up(base: str) -> None:
    for _ in range(100):
        try:
            if requests.get(base + "/api/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    sys.exit("the server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bulk-rounds", type=int, default=20)
    parser.add_argument("--keep-server", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database, e.g. .../it_bulk_bench")
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "THROTTLE_USER": "off",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    recreate_database(url)
    run([PYTHON, "manage.py", "migrate", "--noinput"], env)
    token = run([PYTHON, "manage.py", "create_api_user", "bench-maint", "--role", "maintainer"], env).split()[-1]
    for name in ("bench-alice", "bench-bob"):
        run([PYTHON, "manage.py", "create_api_user", name, "--role", "member"], env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [GUNICORN, "issue_tracker.wsgi:application", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "300"],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_until_up(base)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        session.get(base + "/api/issues?page_size=1")  # warm both connections to the workers' DB

        data = make_csv(args.rows)
        print(f"CSV: {args.rows} rows, {len(data) / 1e6:.1f} MB")
        for label, kwargs in (
            ("raw text/csv", {"data": data, "headers": {"Content-Type": "text/csv"}}),
            ("multipart", {"files": {"file": ("issues.csv", data, "text/csv")}}),
        ):
            start = time.perf_counter()
            response = session.post(base + "/api/issues/import", **kwargs)
            elapsed = time.perf_counter() - start
            body = response.json()
            assert response.status_code == 200 and body["created"] == args.rows, (response.status_code, body)
            print(f"import {label:13s}: {elapsed:6.2f} s  {args.rows / elapsed:9,.0f} rows/s")

        # Memory: a ~20 MB file (under the 20 MB limit), peak RSS growth of the worker that served it.
        big_rows = int(args.rows * 19.5e6 / len(data))
        big = make_csv(big_rows, seed=2)
        pids = worker_pids(server.pid)
        for pid in pids:
            reset_peak(pid)
        before = {pid: rss_kib(pid, "VmRSS") for pid in pids}
        start = time.perf_counter()
        response = session.post(base + "/api/issues/import", files={"file": ("big.csv", big, "text/csv")})
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and response.json()["created"] == big_rows, response.text[:500]
        growth = max(rss_kib(pid, "VmHWM") - before[pid] for pid in pids) / 1024
        print(
            f"import {len(big) / 1e6:.1f} MB multipart ({big_rows} rows): {elapsed:.2f} s, "
            f"{big_rows / elapsed:,.0f} rows/s, worker peak RSS growth {growth:.1f} MB"
        )

        # Bulk: 1,000 items, alternating target status so every item changes each time.
        ids = [
            issue["id"]
            for page in range(1, 11)
            for issue in session.get(base + f"/api/issues?page_size=100&page={page}&ordering=id").json()["results"]
        ]
        timings = []
        for round_no in range(args.bulk_rounds):
            target = "closed" if round_no % 2 else "in_progress"
            body = [{"id": pk, "status": target} for pk in (ids if round_no % 2 else list(reversed(ids)))]
            start = time.perf_counter()
            response = session.post(base + "/api/issues/bulk-status", json=body)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text[:500]
            if round_no:
                assert response.json()["updated"] == 1000, response.json()["updated"]
        steady = timings[1:]
        print(
            f"bulk of 1,000 items: median {statistics.median(steady):.1f} ms, "
            f"mean {statistics.mean(steady):.1f} ms, max {max(steady):.1f} ms over {len(steady)} requests"
        )
        if args.keep_server:
            print(f"server left running at {base} (pid {server.pid})")
            return
    finally:
        if not args.keep_server:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
