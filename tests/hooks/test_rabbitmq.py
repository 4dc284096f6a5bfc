"""The broker may be RabbitMQ instead of Redis (``CELERY_BROKER_URL=amqp://…``, docs/deployment.md): the same
gunicorn web host and ``celery -A issue_tracker worker -B``, on a queue of their own in RabbitMQ, deliver signed
webhooks (a retry included: a countdown message, which RabbitMQ holds at the worker rather than in a sorted set as
Redis does) and run an import and an export job end to end."""

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from hooks.models import WebhookDelivery
from jobs.models import Job
from tests import helpers
from tests.hooks.receivers import Receiver
from tests.hooks.workers import Worker, app_env, celery_worker
from tests.servers import GunicornServer, gunicorn_server, tail

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AMQP_URL = os.environ.get("HOOKS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def rabbitmq_available() -> bool:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:  # refused, reset, bad credentials: kombu raises each as its own type
        return False


def consumers(queue: str) -> int:
    """How many consumers RabbitMQ counts on ``queue`` (a passive declare: it fails if the queue does not exist)."""
    with Connection(AMQP_URL) as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=True).consumer_count


def forget_amqp_queue(queue: str) -> None:
    """Delete the queue and its exchange (Celery names the default exchange after the default queue): test runs
    leave nothing behind in RabbitMQ."""
    with Connection(AMQP_URL) as conn:
        channel = conn.default_channel
        channel.queue_delete(queue=queue)
        channel.exchange_delete(exchange=queue)


@pytest.fixture
def on_rabbitmq(tmp_path: Path) -> Iterator[tuple[GunicornServer, Worker]]:
    """A web host and a worker whose broker is RabbitMQ, sharing the jobs' storage folder."""
    if not rabbitmq_available():
        helpers.unavailable("RabbitMQ broker tests", f"no RabbitMQ at {AMQP_URL}", "start rabbitmq-server")
    queue = f"hooks-test-amqp-{uuid.uuid4().hex[:12]}"
    env = {**app_env(queue, broker=AMQP_URL), "JOBS_STORAGE_DIR": str(tmp_path / "jobs")}
    try:
        with celery_worker(queue=queue, extra_env=env) as worker, gunicorn_server(extra_env=env) as web:
            yield web, worker
    finally:
        forget_amqp_queue(queue)


def test_webhooks_and_jobs_run_through_rabbitmq(on_rabbitmq, receiver: Receiver, webhook, boss):
    web, worker = on_rabbitmq
    assert "Connected to amqp://" in tail(worker.log, 200)
    assert consumers(worker.queue) == 1  # the worker consumes from RabbitMQ's queue, not from Redis
    session = web.session()
    session.headers.update(helpers.auth_header(boss))
    receiver.plan = [500]  # the first attempt fails: the retry goes through RabbitMQ with a countdown

    created = session.post(f"{web.url}/api/issues", json={"project": "WEB", "title": "Via RabbitMQ"})
    assert created.status_code == 201
    got = receiver.wait_for(1, timeout=30)
    assert len(got) == 1, [r.status for r in receiver.requests]
    body = got[0].verify(webhook.secret)  # signature, id and timestamp
    assert body["type"] == "issue.created" and body["data"]["issue"] == created.json()
    assert [r.status for r in receiver.requests] == [500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1

    rows = [[f"Imported {n}", "", "open", "low", "", "bug"] for n in range(300)]
    rows[7][2] = "nonsense"  # a row error, so that the answer is not trivially all-created
    csv_body = helpers.csv_text(rows).encode()
    imported = session.post(
        f"{web.url}/api/issues/import?project=WEB",
        data=csv_body,
        headers={"Content-Type": "text/csv", "Prefer": "respond-async"},
    )
    assert imported.status_code == 202, imported.text[:500]
    job = poll(session, imported.headers["Location"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == {"done": 300, "total": 300}
    dry_run = session.post(
        f"{web.url}/api/issues/import?project=WEB&dry_run=true", data=csv_body, headers={"Content-Type": "text/csv"}
    )
    assert job["result"] == dry_run.json()
    assert (job["result"]["created"], job["result"]["failed"]) == (299, 1)

    exported = session.get(f"{web.url}/api/issues/export?project=WEB&async=true")
    assert exported.status_code == 202, exported.text[:500]
    export = poll(session, exported.headers["Location"])
    assert export["status"] == "succeeded", export["error"]
    csv_file = session.get(export["file"])
    assert csv_file.status_code == 200
    assert csv_file.text.count("Imported ") == 299 and "Via RabbitMQ" in csv_file.text

    # The import's one ``issues.imported`` event, after the created one: two deliveries, both succeeded.
    got = receiver.wait_for(2, timeout=30)
    assert [r.verify(webhook.secret)["type"] for r in got] == ["issue.created", "issues.imported"]
    assert got[1].verify(webhook.secret)["data"]["counts"] == {"total_rows": 300, "created": 299, "failed": 1}
    # The receiver answers before the worker records the attempt: wait for the log to say so.
    expected = [("succeeded", 1), ("succeeded", 2)]  # (status, attempts): issues.imported, then issue.created
    deadline = time.monotonic() + 15
    while (logged := sorted(WebhookDelivery.objects.values_list("status", "attempts"))) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert logged == expected
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}


def poll(session, url: str, timeout: float = 60) -> dict:
    """The job at ``url`` (``GET /api/jobs/{id}``) once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        job = session.get(url).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)
