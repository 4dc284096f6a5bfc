"""Webhook tasks: one attempt of one delivery, and the periodic sweep (beat: ``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from . import delivery


@shared_task(name="hooks.deliver", ignore_result=True, acks_late=True)
def deliver(delivery_id: str) -> str | None:
    return delivery.attempt(delivery_id)


@shared_task(name="hooks.sweep", ignore_result=True)
def sweep() -> int:
    return delivery.sweep()
