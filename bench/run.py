"""The benchmark harness: every hot path of the API next to its floor, at 10k, 100k (and 1M) issues.

    .venv/bin/python -m bench.run --mode quick     # make bench: 10k and 100k, short runs, < 5 minutes
    .venv/bin/python -m bench.run --mode full      # make bench-full: 10k, 100k and 1M

For each size: a fresh PostgreSQL database ``bench_<size>`` is created, migrated and filled with
``python -m bench.seed`` (timed); a production-like server is started (gunicorn, 2 sync workers, DEBUG off,
``bench.settings`` = the product plus the floors' URLs); then wrk (from Debian's packages, installed with
apt-get when missing) drives each endpoint with ``-t C -c C`` for ``--duration`` seconds after a 1 s warm-up.
The endpoints with ratio targets (``PAIRED``) then run ``--rounds`` more times, each right after a run of their
floor, and their ratio is the median of those paired ratios.
Import, bulk and export are single large requests, timed from Python with ``requests``.

With ``--projects P`` (default 1: every issue in the default project, as before projects) the issues are spread
over P projects, in ``bench_<size>_p<P>``, and every request is made by a maintainer of ``--member-of`` of them
(default 5: the issue's "member of 5 of 20 projects"); the list floors then list the same projects' issues.

Output (``--out``, default bench/results for full runs and bench/results/quick for quick runs):
results.json (raw figures), results.md (table with ratios to the floors, and the targets), latency.png.
"""

import argparse
import csv
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
GUNICORN = str(Path(PY).parent / "gunicorn")
LUA = str(ROOT / "bench" / "wrk" / "bench.lua")
PG_BASE = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
USERS = {"10k": 200, "100k": 500, "1m": 2000}
TARGET_LIST_RPS = 5 * 47  # the issue: at least 5x the 47 req/s of the common implementations
BENCH_USER = "bench_maintainer"  # every API request carries its token

# name -> (kind, path, floor, mode). kind "floor" rows are the references.
FLOOR_OF = {"list": "floor_list", "one": "floor_one_row"}


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- environment ----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian's packages; installed with apt-get when missing (needs root, as in this container)."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing it with apt-get (Debian package 'wrk')")
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "apt-get"]
    subprocess.run([*apt, "update", "-qq"], check=True)
    subprocess.run(
        [*apt, "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is still missing after apt-get install wrk")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "wrk"


def django_env(db: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"{PG_BASE}/{db}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-not-for-production",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_LOG_LEVEL": "ERROR",  # no log line per 4xx (a 409 or a probe's 400) during the runs
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def manage(db: str, *args: str) -> str:
    return python(db, "manage.py", *args)


def python(db: str, *args: str) -> str:
    """Run the project's Python on the database ``db`` (``django_env``); its standard output."""
    out = subprocess.run([PY, *args], cwd=ROOT, env=django_env(db), check=True, capture_output=True, text=True)
    return out.stdout


def recreate_db(db: str) -> None:
    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


def query(db: str, sql: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(f"{PG_BASE}/{db}", autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


class Server:
    """gunicorn, 2 sync workers, the production WSGI app with bench.settings (product + floors)."""

    def __init__(self, db: str, port: int, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.db, self.port, self.workers, self.env = db, port, workers, env or {}
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def __enter__(self) -> "Server":
        cmd = [
            GUNICORN,
            "issue_tracker.wsgi:application",
            f"--workers={self.workers}",
            f"--bind=127.0.0.1:{self.port}",
            "--timeout=600",  # the 100k-row import is one long request
            "--log-level=warning",
        ]
        env = {**django_env(self.db), **self.env}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__()
        sys.exit("gunicorn did not become healthy within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the gunicorn we started, and only its workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]


# --- wrk ------------------------------------------------------------------------------------------


def run_wrk(
    wrk: str, base: str, *, path: str, mode: str, token: str, ids: str, duration: float, connections: int
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        {
            "BENCH_MODE": mode,
            "BENCH_PATH": path,
            "BENCH_TOKEN": token,
            "BENCH_IDS": ids,
            "BENCH_THREADS": str(connections),
        }
    )
    cmd = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout=30s",
        "-s",
        LUA,
        base,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("BENCH_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
    return {
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "requests": raw["requests"],
        "non_2xx_3xx": raw["errors_status"],
        "socket_errors": errors,
        "seconds": round(seconds, 2),
    }


def sample_ids(db: str, n: int, where: str = "TRUE") -> str:
    rows = query(db, f"SELECT id, version FROM issues_issue WHERE {where} ORDER BY random() LIMIT %s", [n])
    return ",".join(f"{i}:{v}" for i, v in rows)


def bench_user(db: str, projects: int, member_of: int) -> tuple[str, list[int] | None]:
    """The token of the user every request is made by, and the ids of the projects it sees (None: every project).

    One project: a maintainer of the default project (which every issue is in), as before projects. Several: a
    maintainer of the first ``member_of`` of them in creation order (the default one, internal, and private ones:
    bench.seed makes the others private), so it sees exactly those; maintainer, so that bulk and import run too."""
    if projects == 1:
        return manage(db, "create_api_user", BENCH_USER, "--role", "maintainer").strip().splitlines()[-1], None
    rows = query(db, "SELECT id, key FROM issues_project ORDER BY id LIMIT %s", [member_of])
    token = ""
    for _, key in rows:
        out = manage(db, "create_api_user", BENCH_USER, "--role", "maintainer", "--project", key)
        token = out.strip().splitlines()[-1]
    return token, [pk for pk, _ in rows]


def in_projects(visible: list[int] | None, column: str = "project_id") -> str:
    """A SQL condition: the row's project is one of ``visible`` (ids), or TRUE for every project."""
    return "TRUE" if visible is None else f"{column} IN ({', '.join(str(int(pk)) for pk in visible)})"


def start_py_spy(server: "Server", args: argparse.Namespace, label: str, name: str) -> tuple | None:
    """py-spy on both gunicorn workers, for an endpoint named in ``--profile`` (a run of its own)."""
    if not args.profile or name not in args.profile:
        return None
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    folder = ROOT / "bench" / "results" / "tmp" / "profiles"  # large collapsed stacks, not committed
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{label}-{name}.txt"
    assert server.proc is not None, "the server is started before it is profiled"
    cmd = [spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--idle", "--nolineno"]
    cmd += ["--rate", "200", "--format", "raw", "--duration", str(args.duration), "--output", str(path)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path


# Phases of a request, recognised by a frame of the sample's stack (inclusive shares; they may overlap,
# e.g. the COUNT's database wait counts under "pagination" and under "database wait").
PROFILE_PHASES = {
    "authentication": ("Request._authenticate",),
    "permissions": ("check_permissions",),
    "filtering": ("filter_queryset",),
    "pagination (COUNT + page)": ("paginate_queryset",),
    "serialization": ("Serializer.data", "to_representation"),
    "services (writes)": ("issues/services.py",),
    "database wait (psycopg)": ("Connection.wait",),
}


def finish_py_spy(proc: subprocess.Popen, path: Path) -> dict[str, Any]:
    """Shares of the samples taken inside a request: per phase, and the project's own frames."""
    proc.wait(timeout=120)
    phases = dict.fromkeys(PROFILE_PHASES, 0)
    own: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "handle_request (gunicorn" not in stack:
            continue  # the master, and workers waiting for a connection, are not request time
        weight = int(count)
        samples += weight
        for phase, markers in PROFILE_PHASES.items():
            if any(marker in stack for marker in markers):
                phases[phase] += weight
        for frame in {f for f in stack.split(";") if "(issues/" in f or "(reports/" in f}:
            own[frame] = own.get(frame, 0) + weight
    if not samples:
        return {"file": str(path.relative_to(ROOT)), "samples_in_requests": 0}
    return {
        "file": str(path.relative_to(ROOT)),
        "samples_in_requests": samples,
        "phases": {phase: round(n / samples, 3) for phase, n in phases.items()},
        "own_frames": [
            {"frame": frame, "share": round(n / samples, 3)} for frame, n in sorted(own.items(), key=lambda i: -i[1])
        ][:12],
    }


def current_versions(db: str, ids: str) -> str:
    wanted = [int(pair.split(":")[0]) for pair in ids.split(",") if pair]
    versions = dict(query(db, "SELECT id, version FROM issues_issue WHERE id = ANY(%s)", [wanted]))
    return ",".join(f"{i}:{versions[i]}" for i in wanted)


def check_path(base: str, path: str, token: str, method: str = "GET") -> int:
    headers = {"Authorization": f"Token {token}"} if token else {}
    return requests.request(method, base + path, headers=headers, timeout=60, stream=True).status_code


# --- one size -------------------------------------------------------------------------------------


def measure_size(label: str, args: argparse.Namespace, wrk: str) -> dict[str, Any]:
    n = SIZES[label]
    db = f"bench_{label}" if args.projects == 1 else f"bench_{label}_p{args.projects}"
    result: dict[str, Any] = {
        "issues": n,
        "users": USERS[label],
        "projects": args.projects,
        "database": db,
        "endpoints": {},
        "notes": [],
    }
    if args.reuse and query_count_ok(db, n, args.projects):
        log(f"{label}: reusing {db} ({n} issues in {args.projects} projects)")
        result["seed_seconds"] = None
    else:
        log(f"{label}: creating {db}, migrating, seeding {n} issues in {args.projects} projects")
        recreate_db(db)
        manage(db, "migrate", "--noinput", "-v0")
        started = time.monotonic()
        seed_out = python(
            db, "-m", "bench.seed", "--issues", str(n), "--users", str(USERS[label]),
            "--projects", str(args.projects), "--jobs", "3",
        )  # fmt: skip
        result["seed_seconds"] = round(time.monotonic() - started, 1)
        result["seed_output"] = seed_out.strip()
        log(f"{label}: {seed_out.strip()} (command wall time {result['seed_seconds']}s)")
    token, visible = bench_user(db, args.projects, args.member_of)
    seen = in_projects(visible)
    if visible is not None:
        result["caller_projects"] = len(visible)
        result["caller_issues"] = query(db, f"SELECT count(*) FROM issues_issue WHERE {seen}")[0][0]
        log(f"{label}: {BENCH_USER} is a maintainer of {len(visible)} projects, {result['caller_issues']} issues")
    top_assignee = query(
        db,
        f"SELECT assignee_id FROM issues_issue WHERE assignee_id IS NOT NULL AND {seen} "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )[0][0]
    read_ids = sample_ids(db, 2000, seen)
    patch_sample = sample_ids(db, 4000, seen).split(",")
    patch_ids, patch_warm_ids = ",".join(patch_sample[:2000]), ",".join(patch_sample[2000:])
    comment_ids = sample_ids(db, 2000, seen)
    result["top_assignee"] = top_assignee
    # The list floors list what the caller sees: the same projects (none named: every issue).
    scoped = "" if visible is None else "?projects=" + ",".join(map(str, visible))

    wrk_cases: list[tuple[str, str, str, str, str | None]] = [
        # name, path, mode, ids, floor
        ("floor_bytes", "/bench/floor/bytes", "get", "", None),
        ("floor_one_row", "/bench/floor/one-row?id={id}", "get", read_ids, None),
        ("floor_list", f"/bench/floor/list{scoped}", "get", "", None),
        ("floor_list_count_star", f"/bench/floor/list-count-star{scoped}", "get", "", None),
        ("floor_list_nocount", f"/bench/floor/list-nocount{scoped}", "get", "", None),
        ("list_first_page", "/api/issues", "get", "", "floor_list"),
        ("list_status", "/api/issues?status=open", "get", "", "floor_list"),
        ("list_assignee", f"/api/issues?assignee={top_assignee}", "get", "", "floor_list"),
        ("list_status_assignee", f"/api/issues?status=open&assignee={top_assignee}", "get", "", "floor_list"),
        ("list_page_500", "/api/issues?page=500", "get", "", "floor_list"),
        ("list_keyset", "/api/issues?pagination=keyset", "get", "", "floor_list_nocount"),
        ("list_keyset_status", "/api/issues?pagination=keyset&status=open", "get", "", "floor_list_nocount"),
        ("detail", "/api/issues/{id}", "get", read_ids, "floor_one_row"),
        ("timeline", "/api/issues/{id}/timeline", "get", read_ids, "floor_one_row"),
        ("report_top_assignees", "/api/reports/top-assignees", "get", "", "floor_one_row"),
        ("report_latency", "/api/reports/latency", "get", "", "floor_one_row"),
        ("report_throughput", "/api/reports/throughput?interval=week", "get", "", "floor_one_row"),
        ("patch", "/api/issues/{id}", "patch", patch_ids, "floor_one_row"),
        ("comment_create", "/api/issues/{id}/comments", "comment", comment_ids, "floor_one_row"),
    ]
    if args.only:
        wrk_cases = [c for c in wrk_cases if c[0] in args.only or c[0].startswith("floor_")]
    floor_cases = {name: (path, ids) for name, path, _, ids, _ in wrk_cases if name.startswith("floor_")}
    with Server(db, args.port) as server:
        for name, path, mode, ids, floor in wrk_cases:
            probe = path.replace("{id}", ids.split(":", 1)[0] if ids else "1")
            if mode == "get":
                status = check_path(server.base, probe, token)
                if status != 200:
                    note = f"{name}: skipped, GET {probe} answered {status}"
                    result["notes"].append(note)
                    log(f"{label}: {note}")
                    continue
            # The PATCH warm-up writes to other issues than the measured run, whose versions stay as sampled.
            warm_ids = patch_warm_ids if mode == "patch" else ids
            run_wrk(
                wrk, server.base, path=path, mode=mode, token=token, ids=warm_ids, duration=1,
                connections=args.connections,
            )  # fmt: skip
            figures = run_wrk(
                wrk, server.base, path=path, mode=mode, token=token, ids=ids, duration=args.duration,
                connections=args.connections,
            )  # fmt: skip
            if name in PAIRED and floor in floor_cases and args.rounds:
                # A noisy machine's speed drifts over minutes: the floor measured at the start is not the floor
                # of this moment. Alternate floor and endpoint runs and keep the median of each pair's ratio.
                ratios = []
                for _ in range(args.rounds):
                    f_path, f_ids = floor_cases[floor]
                    floor_run = run_wrk(
                        wrk, server.base, path=f_path, mode="get", token=token, ids=f_ids, duration=args.duration,
                        connections=args.connections,
                    )  # fmt: skip
                    round_ids = current_versions(db, ids) if mode == "patch" else ids
                    endpoint_run = run_wrk(
                        wrk, server.base, path=path, mode=mode, token=token, ids=round_ids, duration=args.duration,
                        connections=args.connections,
                    )  # fmt: skip
                    ratios.append(endpoint_run["rps"] / floor_run["rps"])
                figures["paired_ratios"] = [round(r, 3) for r in ratios]
                figures["paired_ratio"] = round(statistics.median(ratios), 3)
            figures.update({"path": path, "method": {"get": "GET", "patch": "PATCH", "comment": "POST"}[mode]})
            # A profile is taken in a separate run after the measured one: py-spy's sampling must not
            # weigh on the reported figures.
            spy = start_py_spy(server, args, label, name)
            if spy is not None:
                profile_ids = current_versions(db, ids) if mode == "patch" else ids
                run_wrk(
                    wrk, server.base, path=path, mode=mode, token=token, ids=profile_ids, duration=args.duration,
                    connections=args.connections,
                )  # fmt: skip
                figures["profile"] = finish_py_spy(*spy)
            if floor:
                figures["floor"] = floor
            result["endpoints"][name] = figures
            log(
                f"{label}: {name:22s} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  non-2xx {figures['non_2xx_3xx']}  errors {figures['socket_errors']}"
            )
        if not args.only or "bulk" in args.only:
            result["bulk"] = measure_bulk(server.base, token, db, result["notes"], seen)
        if not args.only or "export" in args.only:
            result["export"] = measure_export(server.base, token, db, result["notes"], seen)
        if not args.only or "import" in args.only:
            result["import"] = measure_import(server.base, token, db, args.import_rows, result["notes"])
    return result


def query_count_ok(db: str, n: int, projects: int) -> bool:
    try:
        found = query(db, "SELECT count(*), count(DISTINCT project_id) FROM issues_issue")[0]
    except psycopg.Error:
        return False
    return found == (n, projects)


def measure_bulk(base: str, token: str, db: str, notes: list[str], seen: str = "TRUE") -> dict[str, Any] | None:
    """Five bulk requests of 1,000 items each, alternating closed / in_progress on the same open issues (of the
    caller's projects, ``seen``), so every request changes all 1,000 rows (each with its event). Median and best
    of the five."""
    headers = {"Authorization": f"Token {token}"}
    ids = [
        row[0]
        for row in query(
            db, f"SELECT id FROM issues_issue WHERE status = 'open' AND {seen} ORDER BY random() LIMIT 1000"
        )
    ]
    # A GET answers 405 where the route exists (POST/PUT only) and 404 where it does not; it writes nothing.
    probe = requests.get(f"{base}/api/issues/bulk-status", headers=headers, timeout=60)
    if probe.status_code == 404:
        notes.append("bulk: skipped, /api/issues/bulk-status answered 404 (not implemented yet)")
        log(notes[-1])
        return None
    timings, updated = [], []
    for i in range(5):
        status = "closed" if i % 2 == 0 else "in_progress"
        started = time.monotonic()
        response = requests.post(
            f"{base}/api/issues/bulk-status", json={"ids": ids, "status": status}, headers=headers, timeout=600
        )
        timings.append(time.monotonic() - started)
        if response.status_code != 200:
            notes.append(f"bulk: request {i} answered {response.status_code}: {response.text[:200]}")
            log(notes[-1])
            return {"error": response.status_code}
        updated.append(response.json().get("updated"))
    median = statistics.median(timings)
    figures = {
        "items": len(ids),
        "requests": len(timings),
        "median_ms": round(median * 1000, 1),
        "best_ms": round(min(timings) * 1000, 1),
        "items_per_s": round(len(ids) / median, 1),
        "updated_per_request": updated,
    }
    log(f"bulk: 1,000 items median {figures['median_ms']} ms ({figures['items_per_s']} items/s), updated {updated}")
    return figures


def measure_export(base: str, token: str, db: str, notes: list[str], seen: str = "TRUE") -> dict[str, Any] | None:
    """Export (streamed CSV) of min(100,000, all) issues the caller sees (``seen``): the newest 100k, through
    ``created_after``."""
    headers = {"Authorization": f"Token {token}"}
    params: dict[str, str] = {}
    n = query(db, f"SELECT count(*) FROM issues_issue WHERE {seen}")[0][0]
    wanted = min(n, 100_000)
    if n > wanted:
        cutoff = query(
            db,
            f"SELECT created_at FROM issues_issue WHERE {seen} ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            [wanted],
        )[0][0]
        params["created_after"] = cutoff.astimezone(UTC).isoformat().replace("+00:00", "Z")
    started = time.monotonic()
    response = requests.get(f"{base}/api/issues/export", params=params, headers=headers, stream=True, timeout=600)
    if response.status_code != 200:
        notes.append(f"export: skipped, GET /api/issues/export answered {response.status_code}")
        log(notes[-1])
        response.close()
        return None
    size = 0
    data = bytearray()
    for chunk in response.iter_content(chunk_size=1 << 16):
        size += len(chunk)
        data.extend(chunk)
    elapsed = time.monotonic() - started
    rows = sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8-sig")))) - 1
    figures = {
        "rows": rows,
        "expected_rows": wanted,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed, 1),
        "filter": params,
    }
    if abs(rows - wanted) > wanted * 0.001:
        notes.append(f"export: got {rows} rows, expected about {wanted}")
    log(f"export: {rows} rows, {size / 1e6:.1f} MB in {elapsed:.2f}s ({figures['rows_per_s']} rows/s)")
    return figures


def import_csv(rows: int, user_ids: list[int]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["title", "description", "status", "priority", "assignee", "labels"])
    statuses = ["open", "open", "in_progress", "resolved", "closed"]
    priorities = ["low", "medium", "medium", "high", "critical"]
    labels = ["bug", "feature;ui", "backend", "", "docs;api", "performance"]
    for i in range(rows):
        writer.writerow(
            [
                f"Imported issue {i}",
                "Imported by the bench" if i % 3 else "",
                statuses[i % len(statuses)],
                priorities[i % len(priorities)],
                user_ids[i % len(user_ids)] if i % 7 else "",
                labels[i % len(labels)],
            ]
        )
    return out.getvalue().encode()


def measure_import(base: str, token: str, db: str, rows: int, notes: list[str]) -> dict[str, Any] | None:
    headers = {"Authorization": f"Token {token}"}
    user_ids = [row[0] for row in query(db, "SELECT id FROM auth_user WHERE username LIKE 'demo_user_%%' LIMIT 50")]
    probe = requests.post(
        f"{base}/api/issues/import?dry_run=true",
        files={"file": ("probe.csv", b"title\nprobe\n", "text/csv")},
        headers=headers,
        timeout=60,
    )
    if probe.status_code in (404, 405):
        notes.append(f"import: skipped, POST /api/issues/import answered {probe.status_code} (not implemented yet)")
        log(notes[-1])
        return None
    body = import_csv(rows, user_ids)
    before = query(db, "SELECT count(*) FROM issues_issue")[0][0]
    started = time.monotonic()
    response = requests.post(
        f"{base}/api/issues/import", files={"file": ("bench.csv", body, "text/csv")}, headers=headers, timeout=1200
    )
    elapsed = time.monotonic() - started
    after = query(db, "SELECT count(*) FROM issues_issue")[0][0]
    if response.status_code != 200:
        notes.append(f"import: answered {response.status_code}: {response.text[:300]}")
        log(notes[-1])
        return {"rows": rows, "status": response.status_code, "seconds": round(elapsed, 2)}
    answer = response.json()
    figures = {
        "rows": rows,
        "bytes": len(body),
        "created": answer.get("created"),
        "failed": answer.get("failed"),
        "issues_added_in_db": after - before,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed, 1),
    }
    log(f"import: {rows} rows in {elapsed:.2f}s ({figures['rows_per_s']} rows/s), created {figures['created']}")
    return figures


# --- output ---------------------------------------------------------------------------------------

REFERENCES = {
    "floor_list_count_star": "(reference: COUNT(*) on every request)",
    "floor_list_nocount": "(reference: no count)",
}

# The endpoints with ratio targets: their ratio is the median over paired rounds (see --rounds).
PAIRED = ("list_first_page", "detail", "patch")

ENDPOINT_ORDER = [
    "floor_bytes",
    "floor_one_row",
    "floor_list",
    "floor_list_count_star",
    "floor_list_nocount",
    "list_first_page",
    "list_status",
    "list_assignee",
    "list_status_assignee",
    "list_page_500",
    "list_keyset",
    "list_keyset_status",
    "detail",
    "patch",
    "comment_create",
    "timeline",
    "report_top_assignees",
    "report_latency",
    "report_throughput",
]


def ratio(size: dict[str, Any], name: str) -> float | None:
    """The endpoint's requests/s over its floor's: the median of the paired rounds where there are some."""
    endpoint = size["endpoints"].get(name)
    if not endpoint or not endpoint.get("floor"):
        return None
    if "paired_ratio" in endpoint:
        return endpoint["paired_ratio"]
    floor = size["endpoints"].get(endpoint["floor"])
    return endpoint["rps"] / floor["rps"] if floor and floor["rps"] else None


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    sizes = results["sizes"]
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    s100 = sizes.get("100k")
    if s100 and "list_first_page" in s100["endpoints"]:
        r = ratio(s100, "list_first_page")
        rps = s100["endpoints"]["list_first_page"]["rps"]
        if r is not None:
            rows.append(("list first page, 100k: ≥ 0.7× list floor", f"{r:.2f}×", verdict(r >= 0.7)))
        rows.append(
            (f"list first page, 100k: ≥ {TARGET_LIST_RPS} req/s", f"{rps:.0f} req/s", verdict(rps >= TARGET_LIST_RPS))
        )
    for label in SIZES:
        size = sizes.get(label)
        if not size:
            continue
        for name, floor_share in (("detail", 0.4), ("patch", 0.3)):
            r = ratio(size, name) if name in size["endpoints"] else None
            if r is not None:
                rows.append(
                    (f"{name}, {label}: ≥ {floor_share}× one-query floor", f"{r:.2f}×", verdict(r >= floor_share))
                )
    s10, s1m = sizes.get("10k"), sizes.get("1m")
    for name, what in (("list_first_page", "page numbers"), ("list_keyset", "keyset")):
        title = f"list first page ({what}) p50 latency, 1M / 10k: < 2×"
        if s10 and s1m and name in s10["endpoints"] and name in s1m["endpoints"]:
            a, b = s10["endpoints"][name], s1m["endpoints"][name]
            growth = b["p50_ms"] / a["p50_ms"]
            measured = (
                f"{growth:.2f}× (p50 {a['p50_ms']:.1f} → {b['p50_ms']:.1f} ms; "
                f"p99 {a['p99_ms']:.1f} → {b['p99_ms']:.1f} ms)"
            )
            rows.append((title, measured, verdict(growth < 2)))
        elif s10 and not s1m and name in s10["endpoints"]:
            rows.append((title, "not measured (quick mode has no 1M)", "n/a"))
    return rows


def write_markdown(results: dict[str, Any], out: Path) -> str:
    sizes = [label for label in SIZES if label in results["sizes"]]
    lines = [
        f"Run {results['started']} ({results['mode']} mode), {results['machine']}; wrk -t{results['connections']} "
        f"-c{results['connections']} for {results['duration']} s per endpoint after a 1 s warm-up; "
        "gunicorn 2 sync workers, DEBUG off, PostgreSQL. Load average at start: "
        f"{results['load_at_start']}."
        + (
            f" The ratios of {', '.join(PAIRED)} are the median of {results['rounds']} paired rounds (the floor, then"
            " the endpoint, each for the same duration), so that a drift of the machine's speed between the floor's"
            " run and the endpoint's does not enter them; their req/s column is the first run."
            if results.get("rounds")
            else ""
        )
        + (
            f" The issues are spread over {results['projects']} projects; every request is made by a maintainer of"
            f" {results['member_of']} of them, who sees "
            + ", ".join(f"{results['sizes'][s].get('caller_issues')} issues at {s}" for s in sizes)
            + " (the list floors list the same projects)."
            if results.get("projects", 1) > 1
            else ""
        ),
        "",
        "| endpoint | " + " | ".join(f"{s} req/s | {s} p50 / p99 ms | {s} × floor" for s in sizes) + " |",
        "|---|" + "---:|---:|---:|" * len(sizes),
    ]
    for name in ENDPOINT_ORDER:
        cells = []
        present = False
        for label in sizes:
            size = results["sizes"][label]
            endpoint = size["endpoints"].get(name)
            if not endpoint:
                cells += ["–", "–", "–"]
                continue
            present = True
            r = ratio(size, name)
            bad = f" ({endpoint['non_2xx_3xx']} non-2xx)" if endpoint["non_2xx_3xx"] else ""
            cells += [
                f"{endpoint['rps']:.0f}{bad}",
                f"{endpoint['p50_ms']:.1f} / {endpoint['p99_ms']:.1f}",
                f"{r:.2f}× {endpoint['floor'].removeprefix('floor_')}"
                if r is not None
                else REFERENCES.get(name, "(floor)"),
            ]
        if present:
            path = next(s["endpoints"][name] for s in results["sizes"].values() if name in s["endpoints"])
            lines.append(f"| `{path['method']} {path['path']}` | " + " | ".join(cells) + " |")
    lines += ["", "| single large request | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]

    def cell(label: str, key: str, fmt: str) -> str:
        figures = results["sizes"][label].get(key)
        if not figures or "error" in figures or "status" in figures:
            return "skipped" if not figures else f"error {figures.get('error') or figures.get('status')}"
        return fmt.format(**figures)

    lines.append(
        "| CSV import (rows/s) | "
        + " | ".join(cell(s, "import", "{rows_per_s:.0f} ({rows} rows, {seconds} s)") for s in sizes)
        + " |"
    )
    lines.append(
        "| bulk status, 1,000 items (median ms) | "
        + " | ".join(cell(s, "bulk", "{median_ms} ms ({items_per_s:.0f} items/s)") for s in sizes)
        + " |"
    )
    lines.append(
        "| CSV export (rows/s) | "
        + " | ".join(cell(s, "export", "{rows_per_s:.0f} ({rows} rows, {seconds} s)") for s in sizes)
        + " |"
    )
    lines.append(
        "| bench.seed (s) | "
        + " | ".join(str(results["sizes"][s].get("seed_seconds") or "reused") for s in sizes)
        + " |"
    )
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(results)]
    profiled = [
        (label, name, endpoint["profile"])
        for label in sizes
        for name, endpoint in results["sizes"][label]["endpoints"].items()
        if endpoint.get("profile", {}).get("phases")
    ]
    if profiled:
        lines += [
            "",
            "Profiles (py-spy on both workers, in a separate run of the same endpoint): share of the samples taken",
            "inside a request that fall in each phase (phases overlap: database wait is also counted in its phase).",
            "",
            "| size | endpoint | " + " | ".join(PROFILE_PHASES) + " | top own frames |",
            "|---|---|" + "---:|" * len(PROFILE_PHASES) + "---|",
        ]
        for label, name, profile in profiled:
            shares = " | ".join(f"{profile['phases'][phase]:.0%}" for phase in PROFILE_PHASES)
            own = ", ".join(f"{f['frame'].split(' (')[0]} {f['share']:.0%}" for f in profile["own_frames"][:4])
            lines.append(f"| {label} | `{name}` | {shares} | {own} |")
    notes = [f"- {label}: {note}" for label in sizes for note in results["sizes"][label]["notes"]]
    if notes:
        lines += ["", "Notes:", *notes]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    return text


README_TABLE = ("<!-- bench:table -->", "<!-- /bench:table -->")


def update_readme(table: str) -> None:
    """Put the table of a full run into docs/performance.md, between its bench:table markers."""
    readme = ROOT / "docs" / "performance.md"
    text = readme.read_text()
    start, end = README_TABLE
    if start not in text or end not in text:
        log("docs/performance.md has no bench:table markers: table not copied")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}{end}{tail}")
    log("copied the table into docs/performance.md")


def write_plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [label for label in SIZES if label in results["sizes"]]
    xs = [SIZES[s] for s in sizes]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True)
    for ax, key, title in ((axes[0], "p50_ms", "p50 latency"), (axes[1], "p99_ms", "p99 latency")):
        colors = [plt.cm.tab20(i) for i in range(20)]
        for index, name in enumerate(ENDPOINT_ORDER):
            points = [(x, results["sizes"][s]["endpoints"][name][key]) for x, s in zip(xs, sizes, strict=True)
                      if name in results["sizes"][s]["endpoints"]]  # fmt: skip
            if not points:
                continue
            style = "--" if name.startswith("floor_") else "-"
            ax.plot(
                [p[0] for p in points], [p[1] for p in points], style,
                marker="osD^v<>ph*"[index % 10], color=colors[index % len(colors)], label=name,
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("issues in the table")
        ax.set_ylabel("ms")
        ax.set_title(f"{title} per endpoint (wrk, {results['connections']} connections)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--sizes", help="comma list out of 10k,100k,1m (default: quick 10k,100k; full all three)")
    parser.add_argument("--duration", type=int, help="seconds of wrk per endpoint (default quick 3, full 10)")
    parser.add_argument("--connections", type=int, default=4, help="wrk threads = connections (default 4)")
    parser.add_argument("--import-rows", type=int, help="rows of the CSV import (default quick 20000, full 100000)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="paired floor/endpoint rounds for the endpoints with targets (default quick 2, full 3; 0: none)",
    )
    parser.add_argument(
        "--projects",
        type=int,
        default=1,
        help="spread the issues over this many projects (default 1: the default project, as before projects)",
    )
    parser.add_argument(
        "--member-of",
        type=int,
        default=5,
        help="with --projects > 1, the requests are made by a maintainer of this many of them (default 5)",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reuse", action="store_true", help="reuse a bench database that has the right issue count")
    parser.add_argument("--only", type=lambda s: s.split(","), help="measure only these endpoints (and the floors)")
    parser.add_argument(
        "--profile",
        type=lambda s: s.split(","),
        help="py-spy these endpoints in an extra run (top frames in results.json, stacks in bench/results/tmp/)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default bench/results, quick: bench/results/quick)")
    args = parser.parse_args()
    if args.projects < 1 or (args.projects > 1 and not 1 <= args.member_of <= args.projects):
        parser.error("--projects must be >= 1, and --member-of between 1 and --projects")
    quick = args.mode == "quick"
    labels = args.sizes.split(",") if args.sizes else (["10k", "100k"] if quick else ["10k", "100k", "1m"])
    args.duration = args.duration or (3 if quick else 10)
    args.rounds = (2 if quick else 3) if args.rounds is None else args.rounds
    args.import_rows = args.import_rows or (20_000 if quick else 100_000)
    if args.profile is None and not quick:  # the full run profiles the endpoints that have targets
        args.profile = ["list_first_page", "detail", "patch"]
    out = args.out or (ROOT / "bench" / "results" / ("quick" if quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    load = os.getloadavg()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": args.mode,
        "duration": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "import_rows": args.import_rows,
        "projects": args.projects,
        "member_of": args.member_of if args.projects > 1 else None,
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "load_at_start": " ".join(f"{x:.2f}" for x in load),
        "wrk": wrk_version(wrk),
        "sizes": {},
    }
    log(f"mode {args.mode}, sizes {labels}, {args.duration}s per endpoint, load average {results['load_at_start']}")
    started = time.monotonic()
    for label in labels:
        results["sizes"][label] = measure_size(label, args, wrk)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    results["total_seconds"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = write_markdown(results, out)
    print(table)
    if args.mode == "full" and args.out is None and args.sizes is None and args.only is None and args.projects == 1:
        update_readme(table)  # the table of the default data, comparable from run to run
    try:
        write_plot(results, out)
        log(
            f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'latency.png'} in {results['total_seconds']} s"
        )
    except ImportError:
        log("matplotlib is missing (pip install -r bench/requirements.txt): no latency.png")


if __name__ == "__main__":
    main()
