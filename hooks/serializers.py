"""Webhooks and deliveries as the API shows them, and the webhook's input (its URL passes the SSRF guard)."""

from typing import Any

from rest_framework import serializers

from issues.serializers.fields import StrictInputSerializer, TextField
from issues.serializers.issues import iso_datetime

from .models import ALL_EVENTS, SUBSCRIBABLE, Webhook, WebhookDelivery
from .targets import TargetRefused, check_target

EVENT_CHOICES = [*[event.value for event in SUBSCRIBABLE], ALL_EVENTS]


class WebhookSerializer(serializers.ModelSerializer):
    """A webhook; its ``secret`` only in the answers of create and rotate-secret (``with_secret``)."""

    project = serializers.CharField(source="project.key", read_only=True)

    class Meta:
        model = Webhook
        fields = [
            "id",
            "project",
            "url",
            "events",
            "active",
            "description",
            "disabled_reason",
            "consecutive_failures",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if self.context.get("with_secret"):
            data["secret"] = instance.secret
        return data


class WebhookInputSerializer(StrictInputSerializer):
    read_only_names = ("id", "project", "secret", "disabled_reason", "consecutive_failures", "created_at")

    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(EVENT_CHOICES), min_length=1, max_length=10)
    active = serializers.BooleanField(required=False)
    description = TextField(max_length=500, required=False, allow_blank=True)

    def validate_url(self, url: str) -> str:
        try:
            check_target(url)
        except TargetRefused as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return url


class DeliveryStatusField(serializers.CharField):
    """``pending|retrying|succeeded|failed``; a plain string in the schema (an enum named ``status`` would collide
    with the issues' one)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "pending | retrying | succeeded | failed")
        super().__init__(**kwargs)


class DeliverySerializer(serializers.ModelSerializer):
    status = DeliveryStatusField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "attempts",
            "response_status",
            "error",
            "duration_ms",
            "created_at",
            "next_attempt_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "id": str(instance.pk),
            "event": instance.event,
            "status": instance.status,
            "attempts": instance.attempts,
            "response_status": instance.response_status,
            "error": instance.error,
            "duration_ms": instance.duration_ms,
            "created_at": iso_datetime(instance.created_at),
            "next_attempt_at": iso_datetime(instance.next_attempt_at),
        }


class DeliveryDetailSerializer(DeliverySerializer):
    """One delivery with the body it sends."""

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload"]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {**super().to_representation(instance), "payload": instance.payload}
