"""Webhooks and their deliveries (the outbox: one row per event and subscribed webhook, written in the transaction
of the change that causes it; docs/webhooks.md)."""

import base64
import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

from issues.models import Project

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # Standard Webhooks: 24 to 64 random bytes, base64, after the whsec_ prefix
ALL_EVENTS = "*"


class Event(models.TextChoices):
    ISSUE_CREATED = "issue.created"
    ISSUE_UPDATED = "issue.updated"
    ISSUE_COMMENTED = "issue.commented"
    ISSUES_IMPORTED = "issues.imported"
    PING = "ping"


# What a webhook may subscribe to (ping is sent on request only, whatever the subscription).
SUBSCRIBABLE = [Event.ISSUE_CREATED, Event.ISSUE_UPDATED, Event.ISSUE_COMMENTED, Event.ISSUES_IMPORTED]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class Webhook(models.Model):
    """A URL subscribed to some events of one project. ``secret`` signs every delivery (Standard Webhooks); it is
    shown once, when created or rotated. ``consecutive_failures`` counts deliveries that ended ``failed`` since the
    last success; at ``WEBHOOK_DISABLE_AFTER_FAILURES`` the webhook is deactivated with a ``disabled_reason``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = ArrayField(models.CharField(max_length=40))
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    secret = models.CharField(max_length=120, default=new_secret)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The outbox's INSERT … SELECT reads a project's active webhooks on every write.
        indexes = [models.Index(fields=["project"], condition=models.Q(active=True), name="hooks_webhook_active")]

    def __str__(self) -> str:
        return f"{self.url} ({self.project_id})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one webhook, and the log of its attempts. Its ``id`` is the ``webhook-id`` header, the same on
    every attempt. ``next_attempt_at`` is when the next attempt is due (a claimed attempt pushes it past its own
    timeout, so an attempt whose worker died is due again); ``queued_at`` is when the sweep last handed it to the
    broker (so the sweep hands each one off once per grace period, not on every run)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=Event.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["webhook", "-created_at"], name="hooks_delivery_log"),
            # The sweep's scan: only the unfinished ones.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "retrying"]),
                name="hooks_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.id}"
