"""API tokens in the admin: never shown in full (``str(token)`` is masked too), nor searchable or filterable by key."""

from typing import Any

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy


def mask_key(key: str | None) -> str:
    """The first 4 characters and an ellipsis: enough to tell tokens apart, useless to authenticate."""
    return f"{key[:4]}\u2026" if key else ""


def _masked_token_str(token: Token) -> str:
    return mask_key(token.key)


# ``str(token)`` is the key in DRF; the admin prints ``str(obj)`` in titles, breadcrumbs, messages, its log
# ("Recent actions") and the list of objects a user's deletion takes along. Masked everywhere instead (the
# code that hands out a key uses ``token.key``).
Token.__str__ = _masked_token_str  # type: ignore[method-assign, assignment]

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DrfTokenAdmin):
    """DRF's token admin (its URLs use the user's id, never the key), showing a masked key only.

    Superusers create a token for a user (add page: pick the user) and revoke one (delete); a token is never
    changed in place, and its key is never displayed: its user gets it from ``POST /api/auth/token``, an
    operator from ``manage.py create_api_user``. Searching matches usernames only, and no URL filter,
    ordering or ``_to_field`` may involve the key (each would be an oracle for it).
    """

    list_display = ("masked_key", "user", "created")
    search_fields = ("user__username",)

    @admin.display(description="key")
    def masked_key(self, obj: Token) -> str:
        return mask_key(obj.key)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("user",) if obj is None else ("masked_key", "user", "created")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("masked_key", "user", "created")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # view, add and delete only

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest) -> bool:
        parts = lookup.split(LOOKUP_SEP)
        if parts[0] in {"key", "pk"} or {"key", "password", "auth_token"} & set(parts):
            return False
        return super().lookup_allowed(lookup, value, request)

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        return to_field not in {"key", "pk"} and super().to_field_allowed(request, to_field)
