"""Webhooks and their delivery log in the Django admin (staff). The log is read-only; "Redeliver" sends the chosen
deliveries' events again, each as a new delivery, through the same service as the API."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Webhook, WebhookDelivery
from .serializers import EVENT_CHOICES
from .targets import TargetRefused, check_target


class WebhookAdminForm(forms.ModelForm):
    """The API's rules: the URL passes the SSRF guard, the events are known ones (comma-separated)."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = Webhook
        fields = ["project", "url", "events", "active", "description"]

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        try:
            check_target(url)
        except TargetRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url

    def clean_events(self) -> list[str]:
        events = [str(event).strip() for event in self.cleaned_data["events"]]
        unknown = sorted(set(events) - set(EVENT_CHOICES))
        if unknown or not events:
            raise forms.ValidationError(f"Choose among {', '.join(EVENT_CHOICES)}.")
        return services.normalize_events(events)


def is_staff(request: HttpRequest) -> bool:
    """Staff act as maintainers in every project (``issues.access``), so they manage every webhook; the ``staff``
    group's model permissions (issues/roles.py) predate this app."""
    return bool(request.user.is_active and (request.user.is_staff or request.user.is_superuser))


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ["id", "project", "url", "active", "consecutive_failures", "created_at"]
    list_filter = ["active", "project"]
    search_fields = ["url", "description"]
    list_select_related = ["project"]
    readonly_fields = ["secret", "consecutive_failures", "disabled_reason", "created_at"]
    fields = ["project", "url", "events", "active", "description", *readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*self.readonly_fields, "project"] if obj is not None else self.readonly_fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event", "status", "attempts", "response_status", "duration_ms", "created_at"]
    list_filter = ["status", "event"]
    list_select_related = ["webhook"]
    ordering = ["-created_at"]
    actions = ["redeliver"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = 0
        for delivery in queryset.select_related("webhook"):
            try:
                services.delivery_redeliver(delivery=delivery)
                sent += 1
            except services.WebhookInactive as exc:
                self.message_user(request, f"{delivery.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"{sent} delivery(ies) queued again.", messages.SUCCESS)
