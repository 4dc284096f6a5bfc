"""Acceptance 3 of issue 15 with a real broker outage: a Redis of the test's own is stopped while requests write,
then started again on the same port; every committed event is delivered afterwards, none lost, none twice. (The
machine's Redis is left alone: other test runs use it.)"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from hooks.models import Webhook, WebhookDelivery
from tests import helpers
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.hooks.test_worker import settle
from tests.hooks.workers import app_env, celery_worker
from tests.servers import free_port, gunicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_events_written_while_the_broker_is_stopped_are_all_delivered_once_it_is_back(receiver, django_db_blocker):
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        helpers.unavailable("the broker restart test", "no redis-server binary", "apt-get install redis-server")
    project = ProjectFactory(key="WEB")
    boss = UserFactory(username="boss")
    add_member(boss, project, "maintainer")
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["*"])
    port = free_port()
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    with (
        django_db_blocker.unblock(),
        redis_server(port) as first,
        celery_worker(extra_env=broker) as worker,
        gunicorn_server(workers=1, extra_env={**app_env(worker.queue), **broker}) as web,
    ):
        session = web.session()
        session.headers.update(helpers.auth_header(boss))
        assert session.post(f"{web.url}/api/issues", json={"project": "WEB", "title": "before"}).status_code == 201
        assert len(settle(receiver, 1, timeout=30)) == 1  # the deployment works

        first.terminate()
        first.wait(10)
        started = time.monotonic()
        for n in range(10):
            response = session.post(f"{web.url}/api/issues", json={"project": "WEB", "title": f"during {n}"})
            assert response.status_code == 201, response.text
        assert time.monotonic() - started < 20  # a stopped broker does not hold the writes
        time.sleep(2)  # the relay tried (and failed) to hand them off meanwhile
        assert len(receiver.succeeded()) == 1

        with redis_server(port):  # the same broker address, back, empty
            got = settle(receiver, 11, timeout=90)
    committed = set(map(str, WebhookDelivery.objects.values_list("id", flat=True)))
    assert len(committed) == 11
    assert {r.headers["webhook-id"] for r in got} == committed  # each committed event, once
    assert sorted(r.verify(hook.secret)["data"]["issue"]["title"] for r in got) == sorted(
        ["before", *(f"during {n}" for n in range(10))]
    )
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
