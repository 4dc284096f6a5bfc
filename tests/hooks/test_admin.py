"""Webhooks in the Django admin: staff add them under the API's rules (SSRF guard, known events); the delivery log
is read-only, with a "Redeliver" action that queues the events again as new deliveries."""

import pytest

from hooks.models import Webhook, WebhookDelivery
from hooks.outbox import record

pytestmark = pytest.mark.django_db


def add_form(project, url, events="*"):
    return {"project": project.pk, "url": url, "events": events, "active": "on", "description": ""}


def test_staff_add_a_webhook_under_the_apis_rules(client, staff, project, settings):
    client.force_login(staff)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    refused = client.post("/admin/hooks/webhook/add/", add_form(project, "http://169.254.169.254/latest"))
    assert refused.status_code == 200 and b"non-public address" in refused.content
    unknown = client.post("/admin/hooks/webhook/add/", add_form(project, "http://127.0.0.1:9/", "issue.deleted"))
    assert unknown.status_code == 200
    assert not Webhook.objects.exists()
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    added = client.post("/admin/hooks/webhook/add/", add_form(project, "http://127.0.0.1:9/", "issue.updated,*"))
    assert added.status_code == 302, added.content[:2000]
    webhook = Webhook.objects.get()
    assert webhook.events == ["*"] and webhook.secret.startswith("whsec_")


def test_the_delivery_log_is_read_only_and_redeliver_queues_again(client, staff, webhook, project):
    client.force_login(staff)
    (first,) = record(project.pk, "issue.updated", {"n": 1})
    assert client.get("/admin/hooks/webhookdelivery/").status_code == 200
    page = client.get(f"/admin/hooks/webhookdelivery/{first}/change/")
    assert page.status_code == 200 and b'name="status"' not in page.content  # no editable field
    assert client.get("/admin/hooks/webhookdelivery/add/").status_code == 403
    response = client.post(
        "/admin/hooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(first)]}, follow=True
    )
    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 2
    again = WebhookDelivery.objects.exclude(pk=first).get()
    assert (again.event, again.payload, again.status) == (
        "issue.updated",
        WebhookDelivery.objects.get(pk=first).payload,
        "pending",
    )


def test_non_staff_cannot_reach_the_webhook_admin(client, maintainer, webhook):
    client.force_login(maintainer)
    assert client.get("/admin/hooks/webhook/").status_code == 302  # to the admin's login
