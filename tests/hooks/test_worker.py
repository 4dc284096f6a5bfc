"""Acceptance with real processes: gunicorn web hosts hand deliveries to Redis, a Celery worker (with beat) sends
them to a receiver on localhost that verifies each with the Standard Webhooks library. Every write path sends
exactly the contract's events; refused writes send nothing; retries keep the webhook-id; a broker that is down at
write time loses nothing (the sweep sends it all once the worker's broker answers)."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from hooks.models import Webhook, WebhookDelivery
from tests import helpers
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member
from tests.hooks.receivers import receiver as start_receiver
from tests.hooks.workers import REDIS_URL, app_env, celery_worker, redis_available
from tests.servers import free_port, gunicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    if not redis_available():
        helpers.unavailable("webhook worker tests", f"no Redis at {REDIS_URL}", "start redis-server")
    with django_db_blocker.unblock(), celery_worker() as running:
        yield running


@pytest.fixture(scope="module")
def web(worker, django_db_blocker):
    """A web host handing off to the worker's broker and queue."""
    with django_db_blocker.unblock(), gunicorn_server(workers=2, extra_env=app_env(worker.queue)) as server:
        yield server


@pytest.fixture
def receiver():
    with start_receiver() as state:
        yield state


@pytest.fixture
def setup(receiver):
    project = ProjectFactory(key="WEB")
    boss = UserFactory(username="boss")
    add_member(boss, project, "maintainer")
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["*"])
    return project, boss, hook


def settle(receiver, count: int, timeout: float = 40) -> list:
    """Wait for ``count`` successful requests, then a moment more: nothing else may arrive."""
    receiver.wait_for(count, timeout)
    time.sleep(1.5)
    return receiver.succeeded()


def delivery_when(pk: str, status: str, timeout: float = 30) -> WebhookDelivery:
    """The delivery once the worker recorded ``status`` (the receiver answers before the worker writes its log)."""
    deadline = time.monotonic() + timeout
    while True:
        delivery = WebhookDelivery.objects.get(pk=pk)
        if delivery.status == status or time.monotonic() > deadline:
            return delivery
        time.sleep(0.1)


def test_every_write_path_sends_exactly_its_events(web, worker, receiver, setup):
    project, boss, hook = setup
    session = web.session()
    session.headers.update(helpers.auth_header(boss))
    base = f"{web.url}/api"
    bulk_issues = [IssueFactory(project=project) for _ in range(50)]
    LabelFactory(project=project, name="bug")

    created = session.post(f"{base}/issues", json={"project": "WEB", "title": "Login fails"})
    assert created.status_code == 201
    issue = created.json()
    patched = session.patch(f"{base}/issues/{issue['id']}", json={"status": "in_progress", "version": 1})
    assert patched.status_code == 200
    labelled = session.put(f"{base}/issues/{issue['id']}/labels", json={"labels": ["bug"], "version": 2})
    assert labelled.status_code == 200
    commented = session.post(f"{base}/issues/{issue['id']}/comments", json={"body": "on it"})
    assert commented.status_code == 201
    bulk = session.post(f"{base}/issues/bulk-status", json=[{"id": i.pk, "status": "closed"} for i in bulk_issues])
    assert bulk.status_code == 200 and bulk.json()["updated"] == 50
    # refused writes: nothing is sent for them
    assert session.patch(f"{base}/issues/{issue['id']}", json={"title": "x", "version": 1}).status_code == 409
    assert (
        session.patch(f"{base}/issues/{issue['id']}", json={"title": "x"}, headers={"If-Match": '"1"'}).status_code
        == 412
    )
    assert session.patch(f"{base}/issues/{issue['id']}", json={"status": "bogus", "version": 3}).status_code == 400
    assert (
        session.post(
            f"{base}/issues/bulk-status", json=[{"id": bulk_issues[0].pk, "status": "open", "version": 1}]
        ).status_code
        == 409
    )

    got = settle(receiver, 54)
    assert len(got) == 54, [r.body[:80] for r in got]
    bodies = [received.verify(hook.secret) for received in got]  # every one verifies
    assert len({received.headers["webhook-id"] for received in got}) == 54
    mine = [body for body in bodies if body["data"]["issue"]["id"] == issue["id"]]
    by_type = {}
    for body in mine:
        by_type.setdefault(body["type"], []).append(body)
    assert sorted(by_type) == ["issue.commented", "issue.created", "issue.updated"]
    assert [c["type"] for c in by_type["issue.created"][0]["data"]["changes"]] == ["created"]
    assert by_type["issue.created"][0]["data"]["issue"] == issue
    updates = sorted(by_type["issue.updated"], key=lambda body: body["data"]["issue"]["version"])
    assert [[c["type"] for c in body["data"]["changes"]] for body in updates] == [
        ["status_changed"],
        ["labels_changed"],
    ]
    assert updates[0]["data"]["issue"] == patched.json() and updates[1]["data"]["issue"] == labelled.json()
    assert by_type["issue.commented"][0]["data"]["changes"][0]["details"]["comment_id"] == commented.json()["id"]
    bulk_bodies = [body for body in bodies if body["data"]["source"] == "bulk"]
    assert sorted(body["data"]["issue"]["id"] for body in bulk_bodies) == sorted(i.pk for i in bulk_issues)
    assert all(body["data"]["changes"][0]["details"] == {"from": "open", "to": "closed"} for body in bulk_bodies)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_500_500_200_is_three_attempts_with_one_webhook_id(web, worker, receiver, setup):
    _project, boss, hook = setup
    receiver.plan = [500, 500, 200]
    session = web.session()
    session.headers.update(helpers.auth_header(boss))
    ping = session.post(f"{web.url}/api/projects/WEB/webhooks/{hook.pk}/ping")
    assert ping.status_code == 202
    delivery_when(ping.json()["id"], "succeeded")
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {ping.json()["id"]}
    for received in receiver.requests:
        assert received.verify(hook.secret)["type"] == "ping"
    log = session.get(ping.headers["Location"]).json()
    assert (log["status"], log["attempts"], log["response_status"]) == ("succeeded", 3, 200)


def test_a_hanging_receiver_times_out_and_the_retry_lands(web, worker, receiver, setup):
    _project, boss, hook = setup
    receiver.plan = ["hang", 200]
    receiver.hang_seconds = 3
    session = web.session()
    session.headers.update(helpers.auth_header(boss))
    ping = session.post(f"{web.url}/api/projects/WEB/webhooks/{hook.pk}/ping")
    delivery = delivery_when(ping.json()["id"], "succeeded")
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert delivery.response_status == 200
    assert [r.status for r in receiver.requests] == ["hang", 200]


def test_writes_while_the_broker_is_down_are_all_delivered_later(worker, receiver, setup, django_db_blocker):
    """The web host's broker is a port nothing listens on: the writes never wait for it (a request publishes
    nothing: it writes the outbox row, whose notification wakes the worker's relay), every write succeeds, and the
    worker (relay and sweep, on the real broker) delivers every committed event, none lost."""
    _project, boss, hook = setup
    dead = f"redis://127.0.0.1:{free_port()}/9"
    with gunicorn_server(workers=2, extra_env=app_env(worker.queue, broker=dead)) as down:
        session = down.session()
        session.headers.update(helpers.auth_header(boss))
        started = time.monotonic()
        for n in range(10):
            response = session.post(f"{down.url}/api/issues", json={"project": "WEB", "title": f"t{n}"})
            assert response.status_code == 201, response.text
            assert (
                session.patch(
                    f"{down.url}/api/issues/{response.json()['id']}", json={"priority": "high", "version": 1}
                ).status_code
                == 200
            )
        assert time.monotonic() - started < 30  # a broker that is down does not stall the writes
        rollback = session.patch(f"{down.url}/api/issues/{response.json()['id']}", json={"title": "z", "version": 1})
        assert rollback.status_code == 409
    committed = set(map(str, WebhookDelivery.objects.values_list("id", flat=True)))
    assert len(committed) == 20
    got = settle(receiver, 20, timeout=60)
    assert {r.headers["webhook-id"] for r in got} == committed
    assert [r.verify(hook.secret)["type"] for r in got].count("issue.created") == 10
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_worker_killed_mid_delivery_delivers_once_it_is_back(receiver, setup, django_db_blocker):
    """A worker dies while the receiver is still answering: the delivery's lease ends, and the sweep of the worker
    that takes over sends it again, under the same webhook-id."""
    _project, _boss, hook = setup
    receiver.plan = ["hang", 200]
    receiver.hang_seconds = 5
    lease = {"WEBHOOK_LEASE_SECONDS": "3", "WEBHOOK_TIMEOUT_SECONDS": "10"}
    # A committed delivery never handed off (as after a failed hand-off): the first worker's sweep finds it.
    late = timezone.now() - timedelta(seconds=10)
    delivery_id = WebhookDelivery.objects.create(
        webhook=hook,
        event="issue.updated",
        payload={"type": "issue.updated", "data": {"n": 1}},
        created_at=late,
        next_attempt_at=late,
    ).pk
    with celery_worker(extra_env=lease) as first:
        receiver.wait_for(1, 30, succeeded=False)
        first.kill()
        with celery_worker(queue=first.queue, extra_env=lease):
            delivery = delivery_when(str(delivery_id), "succeeded", timeout=40)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert [r.status for r in receiver.requests] == ["hang", 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery_id)}
    assert receiver.requests[1].verify(hook.secret)["data"]["n"] == 1


def test_no_connection_left_open(worker):
    """The worker is alive after the module's tests (it did not crash on a flush between them)."""
    assert worker.proc.poll() is None
    assert connection.vendor == "postgresql"
