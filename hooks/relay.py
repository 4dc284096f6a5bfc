"""The outbox relay: a thread in each Celery worker that hands newly committed deliveries to the broker.

A write's outbox statement notifies the channel ``CHANNEL`` (``hooks.outbox``); PostgreSQL delivers the notification
when the write commits. The relay ``LISTEN``s on its own connection and, on each notification (and every
``WEBHOOK_RELAY_POLL_SECONDS`` in any case, for one it missed while reconnecting), claims the pending deliveries
nobody handed off yet (``queued_at`` is NULL) and hands them off. So the web request only writes the outbox row; the
message to the broker is published by a worker. Several workers relay side by side: each claims rows with ``FOR
UPDATE SKIP LOCKED`` and marks them (``queued_at``), so a row is handed off once; one marked but never published
(the broker went down meanwhile) is handed off again by the sweep after its grace period.
"""

import logging
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections

from .models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)

CHANNEL = "hooks_outbox"
BATCH = 1000

_started = threading.Event()


def relay(limit: int = BATCH) -> int:
    """Hand off the pending deliveries that were never handed off, oldest first. Returns how many."""
    from .dispatch import hand_off

    table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    handed = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET queued_at = clock_timestamp() WHERE id IN (SELECT id FROM {table} "
                "WHERE status = %s AND queued_at IS NULL AND next_attempt_at <= clock_timestamp() "
                "ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                [DeliveryStatus.PENDING, limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
        handed += hand_off(ids)
        if len(ids) < limit:
            return handed


def _listen_forever() -> None:
    params: dict[str, Any] = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    poll = float(settings.WEBHOOK_RELAY_POLL_SECONDS)
    while True:
        try:
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute(f"LISTEN {CHANNEL}")
                while True:
                    relay()  # what was committed before LISTEN or since the last notification
                    for _notice in listener.notifies(timeout=poll, stop_after=1):
                        pass
        except Exception:  # PostgreSQL restarted or unreachable: the sweep covers the gap; try again soon
            logger.exception("The webhook relay lost its connection; reconnecting")
            connections.close_all()
            time.sleep(1)


def start() -> bool:
    """Start the relay thread in this process (once). Called when a Celery worker is ready."""
    if _started.is_set() or settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    _started.set()
    threading.Thread(target=_listen_forever, name="webhook-relay", daemon=True).start()
    return True
