"""With a broker, a web request publishes nothing: the outbox statement's notification wakes the relay thread of a
worker, which hands the committed deliveries to the broker (``hooks.relay``). A module of its own: its worker's sweep
is held back (a long grace period), so that only the relay can have delivered, and no other worker may relay."""

import re

import pytest

from hooks.models import Webhook, WebhookDelivery
from tests import helpers
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.hooks.test_worker import settle
from tests.hooks.workers import app_env, celery_worker
from tests.servers import free_port, gunicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_relay_hands_off_what_requests_committed(receiver, django_db_blocker):
    project = ProjectFactory(key="WEB")
    boss = UserFactory(username="boss")
    add_member(boss, project, "maintainer")
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["*"])
    slow_sweep = {"WEBHOOK_SWEEP_GRACE_SECONDS": "600"}
    with django_db_blocker.unblock(), celery_worker(extra_env=slow_sweep) as worker:
        # The web host cannot reach any broker: had a request published, its hand-off would have failed.
        dead = f"redis://127.0.0.1:{free_port()}/9"
        with gunicorn_server(workers=1, extra_env={**app_env(worker.queue, broker=dead), **slow_sweep}) as web:
            session = web.session()
            session.headers.update(helpers.auth_header(boss))
            for n in range(5):
                response = session.post(f"{web.url}/api/issues", json={"project": "WEB", "title": f"relayed {n}"})
                assert response.status_code == 201, response.text
            got = settle(receiver, 5, timeout=30)
        log = worker.log.read_text()
    assert {r.verify(hook.secret)["data"]["issue"]["title"] for r in got} == {f"relayed {n}" for n in range(5)}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    # Nothing was left for the sweep: every run of it handed off nothing.
    sweeps = re.findall(r"hooks\.sweep\[[^\]]+\] succeeded in \S+: (\d+)$", log, re.MULTILINE)
    assert set(sweeps) <= {"0"}
