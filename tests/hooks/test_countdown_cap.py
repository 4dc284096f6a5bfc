"""A webhook retry due later than WEBHOOK_MAX_COUNTDOWN_SECONDS is handed off by beat's sweep when due, never as a
countdown message (a broker drops one held unacknowledged past its ack timeout: RabbitMQ's consumer_timeout). A
module of its own: no other worker's beat may sweep the delivery meanwhile (``test_worker.py`` keeps one running)."""

import re

import pytest
from django.utils import timezone

from hooks.models import Webhook, WebhookDelivery
from tests.factories import ProjectFactory
from tests.hooks.test_worker import delivery_when
from tests.hooks.workers import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_retry_further_than_the_countdown_cap_is_handed_off_by_the_sweep(receiver, django_db_blocker):
    """With WEBHOOK_MAX_COUNTDOWN_SECONDS below the retry delay, the failed attempt sends no countdown message (a
    broker may drop one held past its ack timeout: RabbitMQ's consumer_timeout); beat's sweep hands the retry off
    once it is due, and it lands."""
    hook = Webhook.objects.create(project=ProjectFactory(key="WEB"), url=receiver.url, events=["*"])
    receiver.plan = [500, 200]
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event="ping", payload={"type": "ping", "data": {}}, created_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )  # fmt: skip
    with django_db_blocker.unblock(), celery_worker(extra_env={"WEBHOOK_MAX_COUNTDOWN_SECONDS": "0"}) as capped:
        done = delivery_when(str(delivery.pk), "succeeded", timeout=60)
        log = capped.log.read_text()
    assert (done.status, done.attempts, done.response_status) == ("succeeded", 2, 200)
    assert [r.status for r in receiver.requests] == [500, 200]
    # The first attempt was handed off by the worker's relay, the retry by a sweep (which logs "succeeded ...: 1",
    # the number it handed off); as a countdown message, the retry would have needed no sweep.
    assert len(re.findall(r"hooks\.sweep\[[^\]]+\] succeeded in \S+: 1$", log, re.MULTILINE)) == 1
