"""Without a broker (``make run``): the first attempt runs right after the commit, in the process that committed,
and a retry on a timer thread of that process; nothing runs for a rolled-back write."""

import time

import pytest
from django.db import transaction

from hooks.models import WebhookDelivery
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_delivered_after_the_commit_and_retried_on_a_timer(boss_client, webhook, project, receiver, settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    settings.WEBHOOK_RETRY_DELAYS = [1]
    receiver.plan = [500, 200]
    issue = IssueFactory(project=project)
    response = boss_client.patch(f"/api/issues/{issue.pk}", {"title": "New", "version": 1}, format="json")
    assert response.status_code == 200
    assert [r.status for r in receiver.requests] == [500]  # the first attempt, before the answer
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    deadline = time.monotonic() + 10
    while WebhookDelivery.objects.get().status != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert receiver.requests[1].verify(webhook.secret)["data"]["issue"]["title"] == "New"


def test_a_rolled_back_write_sends_nothing(boss, webhook, project, receiver):
    from issues import services

    issue = IssueFactory(project=project)
    queued = []

    def write_then_fail() -> None:
        with transaction.atomic():
            services.issue_update(issue_id=issue.pk, actor=boss, expected_version=1, changes={"title": "Gone"})
            queued.append(WebhookDelivery.objects.count())  # queued in the transaction...
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert queued == [1]
    time.sleep(0.3)
    assert not WebhookDelivery.objects.exists()  # ...and gone with it
    assert receiver.requests == []
