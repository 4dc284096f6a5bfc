"""One delivery against a real receiver on localhost: Standard Webhooks signature, retries with the same
``webhook-id``, timeouts, redirects not followed, the SSRF guard at delivery time, deactivation, the sweep."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from hooks import delivery
from hooks.models import DeliveryStatus, Webhook, WebhookDelivery
from hooks.outbox import record

pytestmark = pytest.mark.django_db


def queue(project, n: int = 1) -> list[WebhookDelivery]:
    ids = []
    for i in range(n):
        ids += record(project.pk, "issue.updated", {"n": i})
    return [WebhookDelivery.objects.get(pk=pk) for pk in ids]


def test_every_delivery_verifies_and_a_tampered_body_does_not(webhook, project, receiver):
    (row,) = queue(project)
    assert delivery.attempt(str(row.pk)) == DeliveryStatus.SUCCEEDED
    (got,) = receiver.requests
    payload = got.verify(webhook.secret)
    assert payload["type"] == "issue.updated" and payload["data"] == {"project": "WEB", "n": 0}
    assert got.headers["webhook-id"] == str(row.pk)
    assert abs(int(got.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 10
    tampered = got.body.replace(b'"n":0', b'"n":1')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        type(got)(got.headers, tampered, 200).verify(webhook.secret)
    with pytest.raises(WebhookVerificationError):
        got.verify("whsec_" + "A" * 32)  # another secret
    row.refresh_from_db()
    assert (row.status, row.attempts, row.response_status, row.error) == ("succeeded", 1, 200, "")
    assert row.duration_ms is not None and row.next_attempt_at is None


def test_500_500_200_is_three_attempts_with_one_webhook_id(webhook, project, receiver):
    receiver.plan = [500, 500, 200]
    (row,) = queue(project)
    delivery.attempt(str(row.pk))  # the retries follow at once (WEBHOOK_RETRY_DELAYS are 0 here)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(row.pk)}
    for received in receiver.requests:
        received.verify(webhook.secret)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.response_status) == ("succeeded", 3, 200)


def test_a_hanging_receiver_times_out_and_is_retried(webhook, project, receiver):
    receiver.plan = ["hang", 200]
    receiver.hang_seconds = 2.5  # past WEBHOOK_TIMEOUT_SECONDS (1 here)
    (row,) = queue(project)
    delivery.attempt(str(row.pk))
    assert [r.status for r in receiver.requests] == ["hang", 200]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("succeeded", 2)


def test_a_retry_is_scheduled_with_the_backoff(webhook, project, receiver, settings, monkeypatch):
    settings.WEBHOOK_RETRY_DELAYS = [30, 120]
    handed = []
    monkeypatch.setattr("hooks.dispatch.hand_off", lambda ids, countdown=0: handed.append((list(ids), countdown)))
    receiver.plan = [503]
    (row,) = queue(project)
    assert delivery.attempt(str(row.pk)) == DeliveryStatus.RETRYING
    row.refresh_from_db()
    assert row.status == "retrying" and row.error == "HTTP 503." and row.response_status == 503
    assert timedelta(seconds=25) < row.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    assert handed == [([str(row.pk)], 30)]
    assert delivery.attempt(str(row.pk)) is None  # not due yet: a duplicate message does nothing
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(webhook, project, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = []
    receiver.plan = ["redirect:http://169.254.169.254/latest/meta-data"]
    (row,) = queue(project)
    assert delivery.attempt(str(row.pk)) == DeliveryStatus.FAILED
    assert len(receiver.requests) == 1
    row.refresh_from_db()
    assert row.response_status == 302 and "not followed" in row.error


def test_private_target_is_refused_at_delivery_time(webhook, project, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = []
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # the URL was accepted while it was allowed
    (row,) = queue(project)
    assert delivery.attempt(str(row.pk)) == DeliveryStatus.FAILED
    assert receiver.requests == []
    row.refresh_from_db()
    assert row.error.startswith("Refused target") and row.response_status is None


def test_twenty_failed_deliveries_in_a_row_deactivate_the_webhook(webhook, project, receiver, settings):
    settings.WEBHOOK_RETRY_DELAYS = [0]  # two attempts per delivery
    receiver.plan = [500] * 40
    rows = queue(project, 20)
    for row in rows[:19]:
        delivery.attempt(str(row.pk))  # and its retry, at once
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("failed", 2), ("pending", 0)}
    webhook.refresh_from_db()
    assert (webhook.active, webhook.consecutive_failures) == (True, 19)
    delivery.attempt(str(rows[19].pk))
    webhook.refresh_from_db()
    assert webhook.active is False and webhook.consecutive_failures == 20
    assert "20 failed deliveries" in webhook.disabled_reason
    assert len(receiver.requests) == 40
    assert not queue(project)  # an inactive webhook gets no new events


def test_a_success_resets_the_failure_count(webhook, project, receiver, settings):
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=7)
    (row,) = queue(project)
    delivery.attempt(str(row.pk))
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 0


def test_the_sweep_hands_off_what_was_never_handed_off_once(webhook, project, receiver, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 60
    old, fresh = queue(project, 2)
    WebhookDelivery.objects.filter(pk=old.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert delivery.sweep() == 1  # the fresh one is left to its own hand-off
    assert [json.loads(r.body)["data"]["n"] for r in receiver.requests] == [0]
    WebhookDelivery.objects.filter(pk=fresh.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert delivery.sweep() == 1
    assert delivery.sweep() == 0
    assert len(receiver.requests) == 2
