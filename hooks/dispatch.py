"""Handing deliveries to Celery. With a broker (``CELERY_BROKER_URL``) each delivery is one ``hooks.deliver``
message; without one (``CELERY_TASK_ALWAYS_EAGER``, the ``make run`` default) the first attempt runs in this process
right after the commit, and a retry on a timer thread of this process. A hand-off that fails is only logged: the
delivery row is committed, and the sweep hands it off again once the broker answers."""

import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def _run_here(delivery_id: str) -> None:
    from .delivery import attempt

    try:
        attempt(delivery_id)
    finally:
        connections.close_all()  # this timer thread's own connections


def hand_off(ids: Iterable[Any], countdown: float = 0) -> int:
    """Queue a delivery attempt for each id, ``countdown`` seconds from now. Returns how many were handed off."""
    from .tasks import deliver

    ids = [str(pk) for pk in ids]
    if not ids:
        return 0
    if settings.CELERY_TASK_ALWAYS_EAGER:
        for pk in ids:
            if countdown > 0:
                timer = threading.Timer(countdown, _run_here, args=(pk,))
                timer.daemon = True
                timer.start()
            else:
                deliver.apply(args=(pk,))
        return len(ids)
    done = 0
    try:
        with deliver.app.producer_or_acquire() as producer:
            # One try to connect, no back-off between tries: a broker that is down must not hold the request.
            producer.connection.ensure_connection(max_retries=0, interval_start=0, interval_step=0, timeout=2)
            for pk in ids:
                deliver.apply_async(args=(pk,), countdown=countdown or None, producer=producer)
                done += 1
    except Exception as exc:  # the broker is down or refused: the sweep retries the hand-off
        logger.warning("Handing off %d webhook deliveries failed (%s); the sweep will retry", len(ids) - done, exc)
    return done
