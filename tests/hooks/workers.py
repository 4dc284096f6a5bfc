"""A real Celery worker (with beat, for the sweep) for the webhook tests: ``celery -A issue_tracker worker -B`` in
its own process group, against the test database and Redis, on a queue of its own (other workers sharing that
Redis never take its messages)."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.servers import ROOT, SECRET_KEY, database_url, stop_process, tail

REDIS_URL = os.environ.get("HOOKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
# Fast retries and sweeps, so that a test sees a whole delivery's life in seconds.
FAST_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "WEBHOOK_RETRY_DELAYS": "1,1,1,1,1",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "WEBHOOK_SWEEP_GRACE_SECONDS": "2",
}


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    queue: str

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout=10)

    def kill(self) -> None:
        """SIGKILL to the worker's process group (its own: started in a new session), as a crash would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def app_env(queue: str, broker: str = REDIS_URL) -> dict[str, str]:
    """What a web host or a worker of the test deployment sets: the test database, the broker and the queue."""
    return {"CELERY_BROKER_URL": broker, "CELERY_QUEUE": queue, **FAST_ENV}


@contextmanager
def celery_worker(
    queue: str | None = None, concurrency: int = 4, extra_env: dict[str, str] | None = None
) -> Iterator[Worker]:
    queue = queue or f"hooks-test-{uuid.uuid4().hex[:12]}"
    directory = Path(tempfile.mkdtemp(prefix="celery-"))
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "CELERY_", "WEBHOOK_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "issue_tracker.settings",
            "DATABASE_URL": database_url(),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "PYTHONPATH": str(ROOT),
            **app_env(queue),
            **(extra_env or {}),
        }
    )
    log = directory / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "issue_tracker", "worker", "-B",
        "-Q", queue, "--pool", "threads", "--concurrency", str(concurrency),
        "--without-mingle", "--without-gossip", "--hostname", f"{queue}@%h",
        "--schedule", str(directory / "beat-schedule"), "--loglevel", "INFO",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(proc, log, queue)
    deadline = time.monotonic() + 60
    while "ready." not in tail(log, 200):
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the celery worker did not start; its log:\n{tail(log)}")
        time.sleep(0.2)
    try:
        yield worker
    finally:
        if worker.proc.poll() is None:
            worker.stop()
        forget_queue(queue)


def forget_queue(queue: str) -> None:
    """Remove the queue, kombu's bindings of its exchange (named after it) and the messages a killed worker left
    unacknowledged on it, so that test runs leave nothing behind in Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, message in client.hgetall("unacked").items():
        if queue.encode() in message:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
