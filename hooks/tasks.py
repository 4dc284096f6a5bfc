"""Webhook tasks: one attempt of one delivery, and the periodic sweep (beat: ``CELERY_BEAT_SCHEDULE``)."""

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from . import delivery, relay


@shared_task(name="hooks.deliver", ignore_result=True, acks_late=True)
def deliver(delivery_id: str) -> str | None:
    return delivery.attempt(delivery_id)


@shared_task(name="hooks.sweep", ignore_result=True)
def sweep() -> int:
    return delivery.sweep()


@worker_ready.connect
def start_relay(**kwargs: Any) -> None:
    """Every worker relays newly committed deliveries to the broker (``hooks.relay``)."""
    relay.start()
