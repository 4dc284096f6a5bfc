"""Writes of webhooks: create, change, delete, rotate the secret, ping, redeliver. Who may do them is the view's
question (the project's maintainers and staff, ``issues.access``)."""

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.exceptions import DomainError
from issues.models import Project

from .models import ALL_EVENTS, DeliveryStatus, Event, Webhook, WebhookDelivery, new_secret
from .outbox import actor_ref


class WebhookInactive(DomainError):
    """A ping or redelivery to a deactivated webhook: a 409 (activate it first, with PATCH ``active: true``)."""

    status_code = 409
    code = "webhook_inactive"


def normalize_events(events: Sequence[str]) -> list[str]:
    """The subscribed events, each once, in a stable order; ``*`` alone when given."""
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    return sorted(set(events))


def webhook_create(
    *, project: Project, url: str, events: Sequence[str], active: bool = True, description: str = ""
) -> Webhook:
    return Webhook.objects.create(
        project_id=project.pk, url=url, events=normalize_events(events), active=active, description=description
    )


def webhook_update(*, webhook: Webhook, **fields: Any) -> Webhook:
    """Change ``url``, ``events``, ``active``, ``description``. Turning a webhook on again clears its failure count
    and ``disabled_reason``."""
    if "events" in fields:
        fields["events"] = normalize_events(fields["events"])
    if fields.get("active") and not webhook.active:
        fields.update(consecutive_failures=0, disabled_reason="")
    for name, value in fields.items():
        setattr(webhook, name, value)
    if fields:
        webhook.save(update_fields=list(fields))
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def webhook_rotate_secret(*, webhook: Webhook) -> Webhook:
    """A new secret, effective for every attempt from now on (retries of older deliveries too)."""
    webhook.secret = new_secret()
    webhook.save(update_fields=["secret"])
    return webhook


def _queue(delivery: WebhookDelivery) -> WebhookDelivery:
    from .dispatch import hand_off

    transaction.on_commit(lambda: hand_off([delivery.pk]))
    return delivery


@transaction.atomic
def webhook_ping(*, webhook: Webhook, project: Project, actor: Any) -> WebhookDelivery:
    """Queue a ``ping`` delivery to this webhook (whatever it subscribes to)."""
    if not webhook.active:
        raise WebhookInactive("The webhook is inactive; activate it before pinging it.")
    from issues.serializers.issues import iso_datetime

    now = timezone.now()
    payload = {
        "type": Event.PING.value,
        "timestamp": iso_datetime(now),
        "data": {
            "project": project.key,
            "webhook": {"id": webhook.pk, "url": webhook.url, "events": webhook.events},
            "actor": actor_ref(actor),
            "source": "api",
        },
    }
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event=Event.PING, payload=payload, created_at=now, next_attempt_at=now
    )
    return _queue(delivery)


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery (a new ``webhook-id``, its own attempts and log)."""
    if not delivery.webhook.active:
        raise WebhookInactive("The webhook is inactive; activate it before redelivering to it.")
    now = timezone.now()
    again = WebhookDelivery.objects.create(
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        payload=delivery.payload,
        status=DeliveryStatus.PENDING,
        created_at=now,
        next_attempt_at=now,
    )
    return _queue(again)
