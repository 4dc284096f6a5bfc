"""Benchmarks of the background work (issue 15): what a webhook adds to a PATCH, how fast 2 Celery workers deliver,
and the async import against the synchronous one. Every figure is set beside its reference, measured in the same run.

    .venv/bin/python -m bench.bench_background --broker redis://127.0.0.1:6379/9 --profile  # all three, ~9 minutes
    .venv/bin/python -m bench.bench_background --only delivery --profile --keep-db          # one part, py-spy'd

It uses bench/run.py's machinery (the production-like gunicorn: 2 sync workers, DEBUG off; ``bench.seed``;
``create_api_user``; wrk with bench/wrk/bench.lua) and bench/bench_import_bulk.py's CSV and table reset. It needs
PostgreSQL at ``BENCH_PG`` and a Redis (``--broker``); it **drops and recreates** ``<prefix>_100k`` and
``<prefix>_import`` (``--db-prefix``, default ``bench_background``) and drops them at the end (``--keep-db``
keeps them). The Celery messages go to a queue of its own (``bench-background-<random>``), removed at the end.
The webhooks' receiver is a local HTTP server of this script (``receiver``: asyncio, one process, answers 204 to
every POST and counts them), so the receiver is never what limits a figure.

1. ``patch``: a PATCH with one active webhook against a PATCH without, on 100k issues (``bench.seed``), wrk
   ``-t4 -c4``. The same webhook of the default project is switched on and off through the API between the runs
   (``PATCH /api/projects/MAIN/webhooks/{id} {"active": ...}``): the server and the requests are the same, only the
   webhook differs. Each run PATCHes issues no run touched before (``IdSlices``: bench.lua's titles repeat from run
   to run, and a PATCH that changes nothing writes nothing). ``--rounds`` pairs, the order flipped each round, ratio
   = requests/s without / with (the cost of a PATCH with the webhook, in units of one without), median of the pairs;
   and the same in CPU: the CPU seconds of the gunicorn workers, PostgreSQL's backends, Redis and the Celery workers
   (when they run) per PATCH, with / without, steadier than requests/s on a shared machine. Per mode:
   - ``broker``: CELERY_BROKER_URL set, as in production; no worker consumes the queue during the pairs (the
     request's work is what is measured: the outbox row, and the message handed to Redis after the commit);
   - ``broker+workers``: the same with the 2 delivery workers of part 2 running on this machine, delivering as the
     PATCHes arrive (their CPU is taken from the same 2 cores: a machine figure, not the request's cost);
   - ``in-process``: no broker (the ``make run`` default): the delivery is made by the web process right after the
     commit, inside the request, so the PATCH also waits for the receiver's answer.
   Each run checks that every 200 PATCH with the webhook on wrote one delivery and that none was written with it off.
2. ``delivery``: ``--events`` issue.updated events (bulk status changes of 1,000 issues, alternating closed and
   in_progress, so each changes all 1,000 rows: one event each), queued in Redis while no worker runs; then 2
   ``celery -A issue_tracker worker`` processes (``--pool``, ``--concurrency``) are started and the deliveries table
   is polled every 0.1 s: deliveries/s from the first poll that sees a success to the one that sees all of them, and
   from the receiver's first to last request. Every delivery must succeed at its first attempt. ``--profile`` drains
   a second batch with py-spy on both workers (not the measured one) and prints where the time of a delivery goes.
3. ``import``: the same 100,000-row CSV (bench_import_bulk's) imported synchronously (``POST /api/issues/import``,
   raw ``text/csv``) and as a job (``?async=true``: the 202, then ``GET /api/jobs/{id}`` every 0.1 s until
   ``succeeded``; timed from the POST to the answer that says succeeded), with one Celery worker (prefork,
   concurrency 1: the default pool) on the broker, in ``--pairs`` alternating pairs (the order flipped each pair),
   each run on emptied tables (bench_import_bulk's ``TRUNCATE`` and ``CHECKPOINT``); after each run a fingerprint of
   the tables: the job must write exactly what the synchronous import wrote. Ratio = async rows/s / sync rows/s,
   median of the pairs. Also the job's own time (``created_at`` to ``finished_at``) and the CPU seconds of
   PostgreSQL's backends and of the processes that ran the import (gunicorn and Celery workers), and their ratio.
   Both imports queue their search documents for issue 14's indexer (``issues.index_search``, on the same worker):
   each run waits, outside its timing, until they are written (printed as "indexer after").

The load average is printed at the start and before each part: the machine may be shared.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from bench.bench_import_bulk import (
    ACTOR,
    ASSIGNEES,
    FINGERPRINT_SQL,
    NUMBER_SEQUENCE_RESET_SQL,
    RESET_SQL,
    cpu_seconds,
    loadavg,
    make_csv,
)
from bench.run import (
    BENCH_USER,
    PG_BASE,
    PY,
    ROOT,
    Server,
    current_versions,
    django_env,
    ensure_wrk,
    manage,
    python,
    query,
    recreate_db,
    run_wrk,
)

PROJECT = "MAIN"  # bench.seed with one project: every issue in the default project
PATCH_MODES = ("broker", "broker+workers", "in-process")
DELIVERY_TARGET = 300  # deliveries/s with 2 workers (the issue)
PATCH_TARGET = 1.15  # a PATCH with a webhook costs at most this many PATCHes without
IMPORT_TARGET = 0.9  # async rows/s at least this share of the synchronous one's


def log(message: str) -> None:
    print(f"[background {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- the receiver ---------------------------------------------------------------------------------


class _Receiver(asyncio.Protocol):
    """HTTP/1.1 by hand, enough for the deliveries (a body with Content-Length): 204 to every POST. ``GET /stats``
    answers the count and the first and last arrival (epoch seconds) since the last ``GET /reset``."""

    stats: dict[str, Any] = {"count": 0, "first": None, "last": None}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still coming
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(head.split(" ", 2)[:2])

    def answer(self, request_line: list[str]) -> None:
        stats = _Receiver.stats
        if request_line == ["GET", "/stats"]:
            body = json.dumps(stats).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        if request_line == ["GET", "/reset"]:
            stats.update(count=0, first=None, last=None)
        else:
            now = time.time()
            stats["count"] += 1
            stats["first"] = stats["first"] or now
            stats["last"] = now
        self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


def serve_receiver(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Receiver, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextlib.contextmanager
def receiver(port: int) -> Iterator[str]:
    """The receiver in a process of its own; yields its base URL."""
    proc = subprocess.Popen(
        [PY, "-m", "bench.bench_background", "receiver", "--port", str(port)], cwd=ROOT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(requests.RequestException):
                if requests.get(base + "/stats", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        else:
            sys.exit("the receiver did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def receiver_stats(base: str) -> dict[str, Any]:
    return requests.get(base + "/stats", timeout=5).json()


def receiver_reset(base: str) -> None:
    requests.get(base + "/reset", timeout=5).raise_for_status()


# --- environment: broker, queue, workers ----------------------------------------------------------


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """``os.environ`` with these values (None: unset) for the servers and workers started inside (bench.run's
    ``django_env`` copies os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Broker:
    """The Redis broker and this run's own queue (nothing else in that Redis database is touched)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.queue = f"bench-background-{uuid.uuid4().hex[:10]}"
        self.client = redis.Redis.from_url(url)

    def env(self, jobs_dir: str) -> dict[str, str | None]:
        return {
            "CELERY_BROKER_URL": self.url,
            "CELERY_QUEUE": self.queue,
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "JOBS_STORAGE_DIR": jobs_dir,
        }

    def waiting(self) -> int:
        return int(self.client.llen(self.queue))

    def forget(self) -> None:
        """Remove the queue (kombu's keys named after it) and any unacknowledged message of it."""
        keys = list(self.client.scan_iter(match=f"{self.queue}*")) + list(
            self.client.scan_iter(match=f"_kombu.binding*{self.queue}*")
        )
        if keys:
            self.client.delete(*keys)
        for tag, message in self.client.hgetall("unacked").items():
            if self.queue.encode() in message:
                self.client.hdel("unacked", tag)
                self.client.zrem("unacked_index", tag)


class Workers:
    """``count`` processes of ``celery -A issue_tracker worker`` on the broker's queue, each in its own process group
    (stopped by its pid, never by name)."""

    def __init__(self, db: str, broker: Broker, *, count: int, pool: str, concurrency: int, folder: Path) -> None:
        self.db, self.broker, self.count, self.pool, self.concurrency = db, broker, count, pool, concurrency
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def __enter__(self) -> "Workers":
        for index in range(self.count):
            log_path = self.folder / f"worker-{uuid.uuid4().hex[:6]}.log"
            command = [
                PY,
                "-m",
                "celery",
                "-A",
                "issue_tracker",
                "worker",
                "-Q",
                self.broker.queue,
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--without-mingle",
                "--without-gossip",
                "--hostname",
                f"{self.broker.queue}-{index}@%h",
                "--loglevel",
                "INFO",
            ]
            with log_path.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=django_env(self.db),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            self.logs.append(log_path)
        deadline = time.monotonic() + 90
        while not all("ready." in path.read_text(errors="replace") for path in self.logs):
            if time.monotonic() > deadline or any(proc.poll() is not None for proc in self.procs):
                self.__exit__()
                sys.exit("a celery worker did not start:\n" + "\n".join(p.read_text()[-2000:] for p in self.logs))
            time.sleep(0.1)
        return self

    def pids(self) -> list[int]:
        """The workers and their pool's processes (prefork's children)."""
        found = []
        for proc in self.procs:
            found.append(proc.pid)
            out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
            found += [int(pid) for pid in out.stdout.split()]
        return found

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- part 1: PATCH with and without a webhook -----------------------------------------------------


def api(token: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Token {token}"
    return session


def set_active(session: requests.Session, base: str, webhook_id: int, active: bool) -> None:
    response = session.patch(
        f"{base}/api/projects/{PROJECT}/webhooks/{webhook_id}", json={"active": active}, timeout=30
    )
    assert response.status_code == 200 and response.json()["active"] is active, response.text[:300]


def execute(db: str, sql: str, params: Any = None) -> None:
    """A statement that returns no rows (bench.run's ``query`` fetches them)."""
    with psycopg.connect(f"{PG_BASE}/{db}", autocommit=True) as conn:
        conn.execute(sql, params)


def deliveries(db: str) -> int:
    return query(db, "SELECT count(*) FROM hooks_webhookdelivery")[0][0]


class IdSlices:
    """Disjoint samples of issues, one per wrk run. bench/wrk/bench.lua titles the k-th PATCH of thread t "Bench edit
    t-k" and walks its ids in the same order on every run, so a second run over the same ids would send the titles
    the first one set: no-op PATCHes (200, nothing written, no event). Fresh issues on every run keep each PATCH a
    real write, with or without the webhook."""

    def __init__(self, db: str, size: int) -> None:
        self.db, self.size = db, size
        self.ids = [row[0] for row in query(db, "SELECT id FROM issues_issue ORDER BY random()")]

    def next(self) -> str:
        taken, self.ids = self.ids[: self.size], self.ids[self.size :]
        if len(taken) < self.size:
            sys.exit("out of fresh issues for the PATCH runs: lower --rounds or --duration")
        return current_versions(self.db, ",".join(f"{pk}:0" for pk in taken))


def patch_run(args: argparse.Namespace, wrk: str, base: str, token: str, ids: str, duration: int) -> dict[str, Any]:
    return run_wrk(
        wrk,
        base,
        path="/api/issues/{id}",
        mode="patch",
        token=token,
        ids=ids,
        duration=duration,
        connections=args.connections,
    )


def cpu_text(run: dict[str, Any]) -> str:
    """``8.10 ms = gunicorn 4.00 + postgres 3.90 + redis 0.20`` (the parts that are not zero)."""
    parts = " + ".join(f"{name} {ms:.2f}" for name, ms in run["cpu_ms_split"].items() if ms > 0.005)
    return f"{run['cpu_ms_per_patch']:.2f} ms = {parts}"


def patch_pairs(
    args: argparse.Namespace,
    wrk: str,
    db: str,
    token: str,
    webhook_id: int,
    slices: IdSlices,
    mode: str,
    broker: Broker,
    workers: "Workers | None" = None,
) -> dict[str, Any]:
    """``--rounds`` pairs of PATCH runs, webhook on and off, the order flipped each round, on one server. Beside
    requests/s, the CPU seconds each run cost: the gunicorn workers, PostgreSQL's backends of the database, Redis
    (in the broker modes; its other clients are counted too, a few) and the Celery workers when they run; per
    PATCH, and their ratio with / without the webhook, steadier than requests/s on a shared machine."""
    session = api(token)
    redis_pid = int(broker.client.info("server")["process_id"]) if mode != "in-process" else None
    rounds: list[dict[str, Any]] = []
    with Server(db, args.port) as server:
        for active in (True, False):  # both workers warm, both paths taken once
            set_active(session, server.base, webhook_id, active)
            patch_run(args, wrk, server.base, token, slices.next(), 1)
        for index in range(args.rounds):
            figures: dict[str, Any] = {"load": loadavg()}
            for active in (True, False) if index % 2 == 0 else (False, True):
                set_active(session, server.base, webhook_id, active)
                ids = slices.next()
                before = deliveries(db)

                def cpu() -> dict[str, float]:
                    return {
                        "gunicorn": sum(cpu_seconds(pid) for pid in server.worker_pids()),
                        "redis": cpu_seconds(redis_pid) if redis_pid else 0.0,
                        "workers": workers.cpu() if workers else 0.0,
                    }

                cpu_before = cpu()
                with BackendCpu(f"{PG_BASE}/{db}") as pg:
                    run = patch_run(args, wrk, server.base, token, ids, args.duration)
                per_patch = 1000 / max(run["requests"], 1)
                split = {name: (value - cpu_before[name]) * per_patch for name, value in cpu().items()}
                run["cpu_ms_split"] = {**split, "postgres": pg.seconds * per_patch}
                run["cpu_ms_per_patch"] = sum(run["cpu_ms_split"].values())
                written = deliveries(db) - before
                ok = run["requests"] - run["non_2xx_3xx"]
                # The only difference must be the webhook: one delivery per successful PATCH with it, none without.
                # (wrk may leave out a request whose answer came after its clock stopped: allow one per connection.)
                expected = ok if active else 0
                assert abs(written - expected) <= args.connections, (mode, active, written, ok)
                figures["on" if active else "off"] = {**run, "deliveries_written": written}
            figures["ratio"] = figures["off"]["rps"] / figures["on"]["rps"]
            figures["cpu_ratio"] = figures["on"]["cpu_ms_per_patch"] / figures["off"]["cpu_ms_per_patch"]
            rounds.append(figures)
            on, off = figures["on"], figures["off"]
            log(
                f"patch [{mode}] round {index + 1}: with webhook {on['rps']:6.1f} req/s (p50 {on['p50_ms']:.1f} ms, "
                f"CPU {cpu_text(on)}) | without {off['rps']:6.1f} req/s (p50 {off['p50_ms']:.1f} ms, "
                f"CPU {cpu_text(off)}) | cost ratio {figures['ratio']:.3f}, in CPU {figures['cpu_ratio']:.3f} | "
                f"load {figures['load']}"
            )
        set_active(session, server.base, webhook_id, True)
    ratios = [r["ratio"] for r in rounds]
    summary = {
        "rounds": rounds,
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "median_rps_on": statistics.median(r["on"]["rps"] for r in rounds),
        "median_rps_off": statistics.median(r["off"]["rps"] for r in rounds),
        "median_p50_on": statistics.median(r["on"]["p50_ms"] for r in rounds),
        "median_p50_off": statistics.median(r["off"]["p50_ms"] for r in rounds),
        "non_2xx": sum(r[k]["non_2xx_3xx"] for r in rounds for k in ("on", "off")),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
        "median_cpu_ms_on": statistics.median(r["on"]["cpu_ms_per_patch"] for r in rounds),
        "median_cpu_ms_off": statistics.median(r["off"]["cpu_ms_per_patch"] for r in rounds),
    }
    log(
        f"patch [{mode}]: median cost ratio {summary['median_ratio']:.3f} (min {summary['min_ratio']:.3f}, max "
        f"{summary['max_ratio']:.3f}; target <= {PATCH_TARGET}); req/s with {summary['median_rps_on']:.1f}, without "
        f"{summary['median_rps_off']:.1f}; in CPU per PATCH {summary['median_cpu_ratio']:.3f} "
        f"({summary['median_cpu_ms_on']:.2f} ms / {summary['median_cpu_ms_off']:.2f} ms); non-2xx {summary['non_2xx']}"
    )
    return summary


def bench_patch(
    args: argparse.Namespace, wrk: str, db: str, token: str, webhook_id: int, broker: Broker, jobs_dir: str
) -> dict[str, Any]:
    slices = IdSlices(db, args.slice)
    results: dict[str, Any] = {}
    for mode in args.patch_modes:
        log(
            f"patch [{mode}]: {args.rounds} pairs of {args.duration} s runs, wrk -t{args.connections} "
            f"-c{args.connections}, load {loadavg()}"
        )
        if mode == "in-process":
            env: dict[str, str | None] = {**broker.env(jobs_dir), "CELERY_BROKER_URL": None, "CELERY_QUEUE": None}
        else:
            env = broker.env(jobs_dir)
        with environment(env):
            if mode == "broker+workers":
                with Workers(
                    db, broker, count=2, pool=args.pool, concurrency=args.concurrency, folder=Path(jobs_dir)
                ) as workers:
                    results[mode] = patch_pairs(args, wrk, db, token, webhook_id, slices, mode, broker, workers)
            else:
                results[mode] = patch_pairs(args, wrk, db, token, webhook_id, slices, mode, broker)
        counts = dict(query(db, "SELECT status, count(*) FROM hooks_webhookdelivery GROUP BY 1"))
        results[mode]["deliveries_by_status"] = counts
        log(f"patch [{mode}]: deliveries by status {counts}; messages waiting in the queue {broker.waiting()}")
        # Start the next mode (and the delivery part) from an empty outbox and queue: what was queued here is
        # not delivered (no worker, no beat: nothing sweeps it).
        execute(db, "DELETE FROM hooks_webhookdelivery")
        broker.forget()
    return results


# --- part 2: delivery throughput ------------------------------------------------------------------


def make_events(session: requests.Session, base: str, db: str, batches: int) -> int:
    """``batches`` bulk status changes of the same 1,000 open issues, alternating closed / in_progress: each one
    changes every item, so each writes 1,000 issue.updated deliveries. Returns how many were written."""
    ids = [
        row[0] for row in query(db, "SELECT id FROM issues_issue WHERE status = 'open' ORDER BY random() LIMIT 1000")
    ]
    before = deliveries(db)
    for index in range(batches):
        status = "closed" if index % 2 == 0 else "in_progress"
        response = session.post(f"{base}/api/issues/bulk-status", json={"ids": ids, "status": status}, timeout=300)
        assert response.status_code == 200 and response.json()["updated"] == len(ids), response.text[:300]
    return deliveries(db) - before


def drain(
    db: str,
    broker: Broker,
    receiver_base: str,
    args: argparse.Namespace,
    folder: Path,
    *,
    expected: int,
    profile: bool = False,
) -> dict[str, Any]:
    """Start the 2 workers on a queue holding ``expected`` deliveries; poll the deliveries table until all have
    succeeded. Returns the rates."""
    receiver_reset(receiver_base)
    with Workers(db, broker, count=2, pool=args.pool, concurrency=args.concurrency, folder=folder) as workers:
        spy = start_spy(workers, folder, args.profile_seconds, not args.profile_cpu) if profile else None
        cpu_before = workers.cpu()
        polls: list[tuple[float, int]] = []
        deadline = time.monotonic() + args.drain_timeout
        with psycopg.connect(f"{PG_BASE}/{db}", autocommit=True) as conn:
            while time.monotonic() < deadline:
                done = conn.execute("SELECT count(*) FROM hooks_webhookdelivery WHERE status = 'succeeded'").fetchone()
                polls.append((time.monotonic(), done[0] if done else 0))
                if polls[-1][1] >= expected:
                    break
                time.sleep(0.1)
        workers_cpu = workers.cpu() - cpu_before
        profile_summary = finish_spy(*spy) if spy else None
    stats = receiver_stats(receiver_base)
    counts = dict(query(db, "SELECT status, count(*) FROM hooks_webhookdelivery GROUP BY 1"))
    attempts = query(db, "SELECT max(attempts), sum(attempts) FROM hooks_webhookdelivery")[0]
    first = next((t, n) for t, n in polls if n > 0)
    last = polls[-1]
    if last[1] < expected:
        log(f"delivery: only {last[1]} of {expected} succeeded within {args.drain_timeout} s")
    db_rate = (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else float("nan")
    span = (stats["last"] or 0) - (stats["first"] or 0)
    receiver_rate = (stats["count"] - 1) / span if span > 0 else float("nan")
    return {
        "events": expected,
        "succeeded": counts.get("succeeded", 0),
        "by_status": counts,
        "max_attempts": attempts[0],
        "total_attempts": attempts[1],
        "received": stats["count"],
        "db_seconds": round(last[0] - first[0], 2),
        "db_rate": round(db_rate, 1),
        "receiver_seconds": round(span, 2),
        "receiver_rate": round(receiver_rate, 1),
        "workers_cpu_s": round(workers_cpu, 1),
        "workers_cpu_ms_per_delivery": round(workers_cpu * 1000 / max(expected, 1), 2),
        "profile": profile_summary,
    }


# Where a delivery's time goes, recognised by a frame of the sample's stack (inclusive shares; they overlap).
SPY_PHASES = {
    "the attempt (hooks.delivery.attempt)": ("attempt (hooks/delivery.py",),
    "  claim (UPDATE … RETURNING)": ("_claim (hooks/delivery.py",),
    "  HTTP POST (requests)": ("post (hooks/delivery.py",),
    "  success (UPDATE)": ("_succeeded (hooks/delivery.py",),
    "opening a PostgreSQL connection": ("BaseDatabaseWrapper.connect (django",),
    "closing connections (Celery's fixup)": ("close_database (celery/fixups/django.py",),
    "database wait (psycopg)": ("wait (psycopg",),
}


# Frames every task sample holds: the pool's thread and Celery's tracer.
PLUMBING = ("threading.py", "concurrent/futures", "celery/app/trace.py", "celery/concurrency", "hooks/tasks.py")


def start_spy(workers: Workers, folder: Path, seconds: int, idle: bool) -> tuple[list[subprocess.Popen], list[Path]]:
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    procs, paths = [], []
    for proc in workers.procs:
        path = folder / f"spy-{proc.pid}.txt"
        command = [
            spy,
            "record",
            "--pid",
            str(proc.pid),
            "--subprocesses",
            "--nolineno",
            "--rate",
            "200",
            "--format",
            "raw",
            "--duration",
            str(seconds),
            "--output",
            str(path),
        ]
        procs.append(
            subprocess.Popen(
                [*command, *(["--idle"] if idle else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        paths.append(path)
    time.sleep(1)  # py-spy attached before the first message is taken
    return procs, paths


def finish_spy(procs: list[subprocess.Popen], paths: list[Path]) -> dict[str, Any]:
    """Shares of the samples taken inside a task (``hooks.deliver``, with Celery's signals around it): per phase, and
    the busiest frames (inclusive: a frame counts once per sample whose stack holds it)."""
    for proc in procs:
        proc.wait(timeout=120)
    phases = dict.fromkeys(SPY_PHASES, 0)
    frames: dict[str, int] = {}
    in_task = total = 0
    for path in paths:
        for line in path.read_text().splitlines() if path.exists() else []:
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            weight = int(count)
            total += weight
            if "trace_task (celery/app/trace.py" not in stack:
                continue  # a thread waiting for a message, the consumer loop, the heartbeat
            in_task += weight
            for frame in set(stack.split(";")[1:]):  # the first is the process / thread
                if not any(plumbing in frame for plumbing in PLUMBING):
                    frames[frame] = frames.get(frame, 0) + weight
            for phase, markers in SPY_PHASES.items():
                if any(marker in stack for marker in markers):
                    phases[phase] += weight
    if not total:
        return {"samples": 0, "in_task": 0}
    return {
        "samples": total,
        "in_task": in_task,
        "phases": {name: round(n / max(in_task, 1), 3) for name, n in phases.items()},
        "frames": [
            {"frame": f, "share": round(n / in_task, 3)} for f, n in sorted(frames.items(), key=lambda i: -i[1])
        ][:20],
    }


def bench_delivery(
    args: argparse.Namespace, db: str, token: str, broker: Broker, receiver_base: str, jobs_dir: str
) -> dict[str, Any]:
    results: dict[str, Any] = {"pool": args.pool, "concurrency": args.concurrency, "workers": 2}
    with environment(broker.env(jobs_dir)), Server(db, args.port) as server:
        session = api(token)
        log(
            f"delivery: writing {args.events} events (bulk status of 1,000 issues x {args.events // 1000}), no worker"
            f" running; load {loadavg()}"
        )
        started = time.monotonic()
        written = make_events(session, server.base, db, args.events // 1000)
        log(
            f"delivery: {written} deliveries written in {time.monotonic() - started:.1f} s; "
            f"{broker.waiting()} messages waiting in the queue"
        )
        # With no worker running nothing is published yet: the workers' relay (hooks.relay) hands the committed
        # deliveries to the broker when they start, so the drain measures the relay's hand-off too.
        assert broker.waiting() == 0, broker.waiting()
        results["measured"] = drain(db, broker, receiver_base, args, Path(jobs_dir), expected=written)
        m = results["measured"]
        log(
            f"delivery: {m['succeeded']} of {m['events']} succeeded (max attempts {m['max_attempts']}); "
            f"{m['db_rate']:.1f} deliveries/s from the deliveries table ({m['db_seconds']} s), "
            f"{m['receiver_rate']:.1f}/s at the receiver ({m['receiver_seconds']} s, {m['received']} requests); "
            f"workers' CPU {m['workers_cpu_s']} s ({m['workers_cpu_ms_per_delivery']} ms per delivery); "
            f"target >= {DELIVERY_TARGET}/s; load {loadavg()}"
        )
        if args.profile:
            execute(db, "DELETE FROM hooks_webhookdelivery")
            written = make_events(session, server.base, db, args.profile_events // 1000)
            results["profiled"] = drain(db, broker, receiver_base, args, Path(jobs_dir), expected=written, profile=True)
            p = results["profiled"]
            log(f"delivery (profiled run, py-spy on both workers; not the figure): {p['db_rate']:.1f}/s")
            print_profile(p["profile"])
    execute(db, "DELETE FROM hooks_webhookdelivery")
    broker.forget()
    return results


def print_profile(profile: dict[str, Any] | None) -> None:
    if not profile or not profile.get("samples"):
        log(f"profile: no samples ({profile})")
        return
    log(
        f"profile: {profile['in_task']} of {profile['samples']} samples inside a task (hooks.deliver); shares of those:"
    )
    for name, share in profile["phases"].items():
        print(f"    {name:32s} {share:6.1%}")
    print("    busiest frames, share of the task's samples (inclusive):")
    for item in profile["frames"]:
        print(f"    {item['share']:6.1%}  {item['frame']}")


# --- part 3: async import against sync import -----------------------------------------------------


class BackendCpu:
    """CPU seconds of the PostgreSQL backends of one database while the block runs, sampled every 0.1 s from a thread:
    a backend that comes and goes within the block (a Celery task's connection: Celery's Django fixup closes the
    connections after every task) counts up to its last sample."""

    SQL = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.seconds = 0.0

    def sample(self, into_first: bool = False) -> None:
        for (pid,) in self.conn.execute(self.SQL).fetchall():
            cpu = cpu_seconds(pid)
            if into_first:
                self.first[pid] = cpu
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def __enter__(self) -> "BackendCpu":
        self.sample(into_first=True)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()
        self.conn.close()
        self.seconds = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def reset_tables(admin: psycopg.Connection, project_id: int) -> None:
    """bench_import_bulk's reset (emptied tables, sequences restarted, CHECKPOINT), with CASCADE: tables added since
    that reference the issues (the search index's) are emptied with them."""
    admin.execute(RESET_SQL + " CASCADE")
    admin.execute(NUMBER_SEQUENCE_RESET_SQL, [project_id])
    admin.execute("CHECKPOINT")


def wait_indexed(admin: psycopg.Connection) -> float:
    """Seconds until the search documents the import queued are written (issue 14's indexer: ``issues.index_search``
    on the same Celery worker, after the commit), so that no run starts while the last one's indexing still runs
    (nor waits behind it for the worker). 0 on a schema without the queue."""
    if admin.execute("SELECT to_regclass('issues_issuesearchpending')").fetchone() == (None,):
        return 0.0
    started = time.perf_counter()
    while admin.execute("SELECT EXISTS (SELECT 1 FROM issues_issuesearchpending)").fetchone() == (True,):
        time.sleep(0.1)
    return time.perf_counter() - started


def job_import(session: requests.Session, base: str, db: str, data: bytes, rows: int) -> dict[str, Any]:
    """POST ?async=true, then poll the job every 0.1 s until it succeeded; seconds from the POST to that answer."""
    started = time.perf_counter()
    response = session.post(
        f"{base}/api/issues/import?async=true", data=data, headers={"Content-Type": "text/csv"}, timeout=600
    )
    accepted = time.perf_counter() - started
    assert response.status_code == 202, response.text[:300]
    location = response.headers["Location"]
    while True:
        job = session.get(location, timeout=60).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    assert job["status"] == "succeeded" and job["result"]["created"] == rows, job
    created, finished = query(db, "SELECT created_at, finished_at FROM jobs_job WHERE id = %s", [job["id"]])[0]
    return {
        "seconds": elapsed,
        "accepted_s": accepted,
        "job_s": (finished - created).total_seconds(),
        "result": job["result"],
    }


def bench_import(args: argparse.Namespace, db: str, broker: Broker, jobs_dir: str) -> dict[str, Any]:
    log(f"import: creating {db}, migrating; load {loadavg()}")
    recreate_db(db)
    manage(db, "migrate", "--noinput", "-v0")
    token = manage(db, "create_api_user", ACTOR, "--role", "maintainer").split()[-1]
    for name in ASSIGNEES:
        manage(db, "create_api_user", name, "--role", "member")
    data = make_csv(args.import_rows)
    rows = args.import_rows
    pairs: list[dict[str, Any]] = []
    url = f"{PG_BASE}/{db}"
    with (
        environment(broker.env(jobs_dir)),
        Server(db, args.port) as server,
        Workers(db, broker, count=1, pool="prefork", concurrency=1, folder=Path(jobs_dir)) as worker,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        session = api(token)
        warm = make_csv(2_000, seed=3)
        for _ in range(2):  # both gunicorn workers and the Celery worker import once first; creates the labels
            response = session.post(f"{server.base}/api/issues/import", data=warm, headers={"Content-Type": "text/csv"})
            assert response.status_code == 200, response.text[:300]
        job_import(session, server.base, db, warm, 2_000)
        wait_indexed(admin)
        project_id = admin.execute("SELECT id FROM issues_project WHERE key = %s", [PROJECT]).fetchone()[0]  # type: ignore[index]

        def cpu() -> tuple[float, float]:
            return sum(cpu_seconds(pid) for pid in server.worker_pids()), worker.cpu()

        log(f"import: CSV of {rows} rows, {len(data) / 1e6:.1f} MB; {args.pairs} pairs, order flipped each pair")
        for index in range(args.pairs):
            figures: dict[str, Any] = {"load": loadavg()}
            prints = {}
            for kind in ("sync", "async") if index % 2 == 0 else ("async", "sync"):
                reset_tables(admin, project_id)
                before = cpu()
                with BackendCpu(url) as pg:
                    if kind == "sync":
                        started = time.perf_counter()
                        response = session.post(
                            f"{server.base}/api/issues/import",
                            data=data,
                            headers={"Content-Type": "text/csv"},
                            timeout=600,
                        )
                        seconds = time.perf_counter() - started
                        assert response.status_code == 200 and response.json()["created"] == rows, response.text[:300]
                        run: dict[str, Any] = {"seconds": seconds, "result": response.json()}
                    else:
                        run = job_import(session, server.base, db, data, rows)
                after = cpu()
                run["index_s"] = wait_indexed(admin)
                run["pg_cpu_s"] = pg.seconds
                run["app_cpu_s"] = (after[0] - before[0]) + (after[1] - before[1])
                run["rows_s"] = rows / run["seconds"]
                prints[kind] = admin.execute(FINGERPRINT_SQL).fetchone()
                figures[kind] = run
            assert prints["sync"] == prints["async"], ("the job wrote other rows than the sync import", prints)
            assert figures["sync"]["result"] == figures["async"]["result"], "the job's result differs"
            figures["ratio"] = figures["async"]["rows_s"] / figures["sync"]["rows_s"]
            # The same ratio in CPU seconds (PostgreSQL's backends and the process that ran the import), steadier
            # than wall time when other processes share the CPUs.
            figures["cpu_ratio"] = (figures["sync"]["pg_cpu_s"] + figures["sync"]["app_cpu_s"]) / (
                figures["async"]["pg_cpu_s"] + figures["async"]["app_cpu_s"]
            )
            pairs.append(figures)
            s, a = figures["sync"], figures["async"]
            log(
                f"import pair {index + 1}: sync {s['seconds']:.2f} s {s['rows_s']:8,.0f} rows/s | async "
                f"{a['seconds']:.2f} s {a['rows_s']:8,.0f} rows/s (202 after {a['accepted_s']:.2f} s, job "
                f"{a['job_s']:.2f} s) | ratio {figures['ratio']:.3f} | CPU s sync: PG {s['pg_cpu_s']:.1f} app "
                f"{s['app_cpu_s']:.1f}; async: PG {a['pg_cpu_s']:.1f} app {a['app_cpu_s']:.1f} (ratio "
                f"{figures['cpu_ratio']:.3f}) | indexer after: sync {s['index_s']:.1f} s, async {a['index_s']:.1f} s | "
                f"load {figures['load']}"
            )
        reset_tables(admin, project_id)
    ratios = [p["ratio"] for p in pairs]
    summary = {
        "rows": rows,
        "bytes": len(data),
        "pairs": [{k: v for k, v in p.items()} for p in pairs],
        "median_ratio": statistics.median(ratios),
        "median_sync_rows_s": statistics.median(p["sync"]["rows_s"] for p in pairs),
        "median_async_rows_s": statistics.median(p["async"]["rows_s"] for p in pairs),
        "median_job_s": statistics.median(p["async"]["job_s"] for p in pairs),
        "median_cpu_ratio": statistics.median(p["cpu_ratio"] for p in pairs),
    }
    for pair in summary["pairs"]:
        for kind in ("sync", "async"):
            pair[kind] = {k: v for k, v in pair[kind].items() if k != "result"}
    log(
        f"import: median ratio async/sync {summary['median_ratio']:.3f} (min {min(ratios):.3f}, max {max(ratios):.3f};"
        f" target >= {IMPORT_TARGET}); sync {summary['median_sync_rows_s']:,.0f} rows/s, async "
        f"{summary['median_async_rows_s']:,.0f} rows/s; in CPU seconds {summary['median_cpu_ratio']:.3f}"
    )
    return summary


# --- main -----------------------------------------------------------------------------------------


def drop(db: str) -> None:
    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def seed_100k(db: str, reuse: bool) -> None:
    if reuse:
        with contextlib.suppress(psycopg.Error):
            if query(db, "SELECT count(*) FROM issues_issue")[0][0] == 100_000:
                log(f"reusing {db}")
                return
    log(f"creating {db}, migrating, seeding 100,000 issues")
    recreate_db(db)
    manage(db, "migrate", "--noinput", "-v0")
    started = time.monotonic()
    out = python(db, "-m", "bench.seed", "--issues", "100000", "--users", "500", "--jobs", "3")
    log(f"{out.strip()} ({time.monotonic() - started:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        type=lambda s: s.split(","),
        default=["patch", "delivery", "import"],
        help="comma list of patch, delivery, import (default all three)",
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"),
        help="Redis URL of the broker (default BENCH_BROKER or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--db-prefix", default="bench_background", help="databases <prefix>_100k, <prefix>_import")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases (and reuse the 100k one)")
    parser.add_argument(
        "--patch-modes",
        type=lambda s: s.split(","),
        default=list(PATCH_MODES),
        help=f"comma list out of {','.join(PATCH_MODES)}",
    )
    parser.add_argument("--rounds", type=int, default=5, help="PATCH pairs per mode (default 5)")
    parser.add_argument("--duration", type=int, default=4, help="seconds of each PATCH run (default 4)")
    parser.add_argument("--slice", type=int, default=1500, help="fresh issues per PATCH run (default 1500)")
    parser.add_argument("--connections", type=int, default=4, help="wrk threads = connections (default 4)")
    parser.add_argument("--events", type=int, default=6000, help="deliveries to drain, a multiple of 1,000")
    parser.add_argument("--pool", default="threads", help="the delivery workers' pool (default threads)")
    parser.add_argument("--concurrency", type=int, default=8, help="each delivery worker's concurrency (default 8)")
    parser.add_argument("--drain-timeout", type=int, default=180)
    parser.add_argument("--profile", action="store_true", help="also drain a batch with py-spy on both workers")
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--profile-events", type=int, default=3000, help="deliveries of the profiled drain")
    parser.add_argument(
        "--profile-cpu", action="store_true", help="profile on-CPU samples only (py-spy without --idle)"
    )
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3, help="sync/async import pairs (default 3)")
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--receiver-port", type=int, default=8776)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs",
        "load_at_start": loadavg(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
    }
    figures["settings"]["json"] = None
    log(f"load average at start: {figures['load_at_start']}; parts {args.only}")
    broker = redis_broker(args.broker)
    db100k, db_import = f"{args.db_prefix}_100k", f"{args.db_prefix}_import"
    jobs_dir = tempfile.mkdtemp(prefix="bench-background-")
    started = time.monotonic()
    try:
        with receiver(args.receiver_port) as receiver_base:
            if "patch" in args.only or "delivery" in args.only:
                seed_100k(db100k, args.keep_db)
                token = manage(db100k, "create_api_user", BENCH_USER, "--role", "maintainer").strip().splitlines()[-1]
                execute(db100k, "DELETE FROM hooks_webhookdelivery")
                execute(db100k, "DELETE FROM hooks_webhook")
                with environment(broker.env(jobs_dir)), Server(db100k, args.port) as server:
                    response = api(token).post(
                        f"{server.base}/api/projects/{PROJECT}/webhooks",
                        json={"url": f"{receiver_base}/hook", "events": ["*"], "description": "bench"},
                        timeout=30,
                    )
                assert response.status_code == 201, response.text[:300]
                webhook_id = response.json()["id"]
                if "patch" in args.only:
                    wrk = ensure_wrk()
                    figures["patch"] = bench_patch(args, wrk, db100k, token, webhook_id, broker, jobs_dir)
                if "delivery" in args.only:
                    figures["delivery"] = bench_delivery(args, db100k, token, broker, receiver_base, jobs_dir)
            if "import" in args.only:
                figures["import"] = bench_import(args, db_import, broker, jobs_dir)
    finally:
        broker.forget()
        shutil.rmtree(jobs_dir, ignore_errors=True)
        if not args.keep_db:
            for db in (db100k, db_import):
                drop(db)
    figures["total_seconds"] = round(time.monotonic() - started, 1)
    figures["load_at_end"] = loadavg()
    print_summary(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


def redis_broker(url: str) -> Broker:
    broker = Broker(url)
    try:
        broker.client.ping()
    except redis.RedisError as exc:
        sys.exit(f"no Redis at {url}: {exc}")
    return broker


def print_summary(figures: dict[str, Any]) -> None:
    lines = [
        "",
        f"Background work, {figures['started']}, {figures['machine']}, load average at start {figures['load_at_start']}"
        f", at end {figures['load_at_end']}; {figures['total_seconds']} s",
        "",
        "| measure | figure | reference | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    for mode, p in (figures.get("patch") or {}).items():
        pairs = ", ".join(f"{r['ratio']:.3f}" for r in p["rounds"])
        lines.append(
            f"| PATCH with one active webhook [{mode}] | {p['median_rps_on']:.1f} req/s "
            f"(p50 {p['median_p50_on']:.1f} ms)"
            f" | without: {p['median_rps_off']:.1f} req/s (p50 {p['median_p50_off']:.1f} ms) | {p['median_ratio']:.3f}×"
            f" cost (pairs {pairs}); in CPU per PATCH {p['median_cpu_ratio']:.3f}× ({p['median_cpu_ms_on']:.2f} / "
            f"{p['median_cpu_ms_off']:.2f} ms) | ≤ {PATCH_TARGET}× |"
        )
    delivery = figures.get("delivery")
    if delivery:
        m = delivery["measured"]
        lines.append(
            f"| deliveries/s, 2 workers ({delivery['pool']} pool, concurrency {delivery['concurrency']} each) | "
            f"{m['db_rate']:.1f}/s (deliveries table), {m['receiver_rate']:.1f}/s (receiver) | {m['succeeded']} of "
            f"{m['events']} succeeded, max attempts {m['max_attempts']} | – | ≥ {DELIVERY_TARGET}/s |"
        )
    imp = figures.get("import")
    if imp:
        pairs = ", ".join(f"{p['ratio']:.3f}" for p in imp["pairs"])
        lines.append(
            f"| async import, {imp['rows']:,} rows | {imp['median_async_rows_s']:,.0f} rows/s | sync: "
            f"{imp['median_sync_rows_s']:,.0f} rows/s | {imp['median_ratio']:.3f}× (pairs "
            f"{pairs}) | ≥ {IMPORT_TARGET}× |"
        )
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "receiver":
        serve_receiver(int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        main()
