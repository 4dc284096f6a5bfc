"""One delivery attempt: claim the row, sign, POST, record the outcome, schedule the retry or give up.

The claim is one ``UPDATE … RETURNING`` that counts the attempt and pushes ``next_attempt_at`` past the attempt's
own timeout (a lease): a duplicate message for the same delivery (the sweep's, a broker's redelivery) finds nothing
to claim, and an attempt whose worker died is due again once the lease ends. Delivery is at least once.
"""

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook as Signer

from .models import DeliveryStatus, Webhook, WebhookDelivery
from .targets import TargetRefused, check_target

logger = logging.getLogger(__name__)
USER_AGENT = "IssueTracker-Webhooks/1.0"
ERROR_MAX = 1000


def retry_delays() -> list[int]:
    """Seconds to wait before attempt 2, 3, …; its length + 1 is the number of attempts."""
    return list(settings.WEBHOOK_RETRY_DELAYS)


def _claim(delivery_id: str) -> tuple[int, Any, int, dict[str, Any]] | None:
    """Claim the attempt and read its webhook in one statement (a worker makes hundreds of attempts a second: each
    round trip counts). Returns ``(webhook id, payload, attempts, {"url", "secret", "active"} of the webhook)``, or
    None when nothing is due."""
    delivery = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    webhook = connection.ops.quote_name(Webhook._meta.db_table)
    lease = float(max(settings.WEBHOOK_LEASE_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS + 1))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {delivery} d SET attempts = d.attempts + 1, "
            f"next_attempt_at = clock_timestamp() + make_interval(secs => %s) FROM {webhook} w "
            "WHERE d.id = %s AND w.id = d.webhook_id AND d.status IN (%s, %s) "
            "AND d.next_attempt_at <= clock_timestamp() + interval '1 second' "
            "RETURNING d.webhook_id, d.payload, d.attempts, w.url, w.secret, w.active",
            [lease, delivery_id, DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    payload = row[1] if not isinstance(row[1], str) else json.loads(row[1])
    return row[0], payload, row[2], {"url": row[3], "secret": row[4], "active": row[5]}


_local = threading.local()


def _session() -> requests.Session:
    """This thread's HTTP session: its connections are kept alive between attempts, so a worker delivering to the
    same receivers does not open a TCP (and TLS) connection per delivery. The target is checked before every
    attempt all the same (``check_target``)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment: the SSRF check is about this host
        _local.session = session
    return session


def body_of(payload: Any) -> str:
    """The bytes sent (and signed): compact JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, delivery_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers: ``webhook-id`` (the delivery), ``webhook-timestamp``, ``webhook-signature``."""
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(delivery_id, at, body),
    }


def post(url: str, secret: str, delivery_id: str, payload: Any) -> tuple[int | None, str, int]:
    """POST the signed payload once. Returns ``(response status or None, error or "", milliseconds)``; the error is
    empty only for a 2xx. Redirects are not followed: a 3xx is an error."""
    body = body_of(payload)
    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        check_target(url)
        response = _session().post(
            url,
            data=body.encode(),
            headers=signed_headers(secret, delivery_id, body),
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        )
        with response:
            status = response.status_code
            if 300 <= status < 400:
                error = f"Redirect to {response.headers.get('location', '?')} not followed (HTTP {status})."
            elif not 200 <= status < 300:
                error = f"HTTP {status}."
    except TargetRefused as exc:
        error = f"Refused target: {exc}"
    except requests.Timeout:
        error = f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS} s."
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    return status, error[:ERROR_MAX], int((time.monotonic() - started) * 1000)


def attempt(delivery_id: str) -> str | None:
    """Make the next attempt of a delivery, if it is due. Returns the delivery's new status (None: nothing due)."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    webhook_id, payload, attempts, webhook = claimed
    if not webhook["active"]:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED, error="The webhook is inactive.", next_attempt_at=None
        )
        return DeliveryStatus.FAILED
    status, error, duration_ms = post(webhook["url"], webhook["secret"], delivery_id, payload)
    log = {"response_status": status, "error": error, "duration_ms": duration_ms}
    if not error:
        _succeeded(delivery_id, status, duration_ms)
        return DeliveryStatus.SUCCEEDED
    delays = retry_delays()
    if attempts <= len(delays):
        delay = delays[attempts - 1]
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(seconds=delay), **log
        )
        # A retry further away than WEBHOOK_MAX_COUNTDOWN_SECONDS is left to the sweep, which hands it off once it
        # is due: a broker that holds a message unacknowledged for long drops it with the worker's channel
        # (RabbitMQ's consumer_timeout, 30 min by default; Redis redelivers it after CELERY_VISIBILITY_TIMEOUT).
        if settings.CELERY_TASK_ALWAYS_EAGER or delay <= settings.WEBHOOK_MAX_COUNTDOWN_SECONDS:
            from .dispatch import hand_off

            hand_off([delivery_id], countdown=delay)
        return DeliveryStatus.RETRYING
    WebhookDelivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED, next_attempt_at=None, **log)
    _count_failure(webhook_id)
    return DeliveryStatus.FAILED


def _succeeded(delivery_id: str, status: int | None, duration_ms: int) -> None:
    """Record the success and end the webhook's run of failures (if it has one): one statement, one round trip."""
    delivery = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    webhook = connection.ops.quote_name(Webhook._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH done AS (UPDATE {delivery} SET status = %s, next_attempt_at = NULL, response_status = %s, "
            "error = '', duration_ms = %s WHERE id = %s RETURNING webhook_id) "
            f"UPDATE {webhook} SET consecutive_failures = 0 "
            "WHERE id = (SELECT webhook_id FROM done) AND consecutive_failures <> 0",
            [DeliveryStatus.SUCCEEDED, status, duration_ms, delivery_id],
        )


def _count_failure(webhook_id: int) -> None:
    """One more failed delivery in a row; at the limit the webhook is deactivated, saying why."""
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    reason = f"Deactivated after {limit} failed deliveries in a row."
    table = connection.ops.quote_name(Webhook._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET consecutive_failures = consecutive_failures + 1, "
            "active = CASE WHEN consecutive_failures + 1 >= %s THEN false ELSE active END, "
            "disabled_reason = CASE WHEN active AND consecutive_failures + 1 >= %s THEN %s ELSE disabled_reason END "
            "WHERE id = %s RETURNING active",
            [limit, limit, reason, webhook_id],
        )
        row = cursor.fetchone()
    if row is not None and not row[0]:
        logger.warning("Webhook %s deactivated: %s", webhook_id, reason)


def sweep(limit: int = 1000) -> int:
    """Hand off the deliveries that are due since more than the grace period and were not handed off by the sweep
    within it: those whose hand-off after the commit failed, whose retry message was lost, or whose worker died
    mid-attempt. Returns how many it handed off."""
    table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    grace = float(settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET queued_at = clock_timestamp() WHERE id IN (SELECT id FROM {table} "
            "WHERE status IN (%s, %s) AND next_attempt_at <= clock_timestamp() - make_interval(secs => %s) "
            "AND (queued_at IS NULL OR queued_at <= clock_timestamp() - make_interval(secs => %s)) "
            "ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
            [DeliveryStatus.PENDING, DeliveryStatus.RETRYING, grace, grace, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    from .dispatch import hand_off

    return hand_off(ids)
