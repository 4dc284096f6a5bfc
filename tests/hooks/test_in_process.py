"""Without a broker (``make run``): the first attempt runs right after the commit, in the process that committed,
and a retry on a timer thread of that process; nothing runs for a rolled-back write."""

import time

import pytest
from django.db import transaction

from hooks.models import Webhook, WebhookDelivery
from tests.factories import IssueFactory, ProjectFactory

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


def test_the_admin_edit_is_delivered_in_process_without_a_broker(client, staff, settings, receiver):
    """No CELERY_BROKER_URL (this test process): the delivery runs right after the admin's commit. (Not beside
    test_worker.py's tests: the relay of the worker those keep running would race this process for the delivery.)"""
    assert settings.CELERY_TASK_ALWAYS_EAGER
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    project = ProjectFactory(key="WEB")
    hook = Webhook.objects.create(project=project, url=receiver.url, events=["issue.updated"])
    issue = IssueFactory(project=project, title="Before")
    client.force_login(staff)
    form = {
        "title": "After", "description": "", "status": issue.status, "priority": issue.priority, "assignee": "",
        "labels": [], "seen_version": 1, "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", form)
    assert response.status_code == 302, response.content[:1000]
    (got,) = receiver.succeeded()  # delivered before the response returned
    body = got.verify(hook.secret)
    assert body["type"] == "issue.updated" and body["data"]["source"] == "admin"
    assert body["data"]["changes"][0]["details"] == {"from": "Before", "to": "After"}
    assert body["data"]["actor"]["id"] == staff.pk
