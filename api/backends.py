"""Authentication backends: the login lockout check (django-axes) and a ModelBackend that loads a user's
permissions in one query instead of two; the lockout's client address and its 429 answer."""

import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import format_html

FIELDS = ("content_type__app_label", "codename")


class OneQueryPermissionBackend(ModelBackend):
    """ModelBackend, but the user's own and group permissions come from a single query per request."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.order_by().values_list(*FIELDS)
            else:
                # Two inner-join arms in one UNION: cheaper than one query OR-ing two outer joins.
                own = Permission.objects.filter(user=user_obj).order_by().values_list(*FIELDS)
                via_groups = Permission.objects.filter(group__user=user_obj).order_by().values_list(*FIELDS)
                perms = own.union(via_groups)
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in perms}
        return user_obj._perm_cache


# --- Login lockout (django-axes); see docs/security.md ---------------------------------------------------------


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in ``AUTHENTICATION_BACKENDS``: while a username+address pair or an
    address is locked out, ``authenticate()`` refuses even the right password (the failure is counted too).

    A call without an HTTP request (a shell, the test client's ``login()``) is no login attempt from a client:
    axes would raise ``AxesBackendRequestParameterRequired``; here it is let through to the next backend.
    Every login view of the project (admin, ``/api-auth/login/``, ``POST /api/auth/token``) passes ``request``.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip_address(request: HttpRequest) -> str | None:
    """The address lockouts count per (``AXES_CLIENT_IP_CALLABLE``): ``REMOTE_ADDR``, unless
    ``DJANGO_NUM_PROXIES`` (``settings.CLIENT_NUM_PROXIES``) is above 0: then the address that many entries from
    the right of ``X-Forwarded-For``, the one the nearest trusted proxy saw (the same rule as DRF's throttles)."""
    remote_addr = request.META.get("REMOTE_ADDR")
    num_proxies = getattr(settings, "CLIENT_NUM_PROXIES", 0) or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies <= 0 or not forwarded:
        return remote_addr
    addresses = [address.strip() for address in forwarded.split(",")]
    return addresses[-min(num_proxies, len(addresses))] or remote_addr


LOCKOUT_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
    "<body><h1>{title}</h1><p>{message}</p></body></html>\n"
)


def lockout_message() -> str:
    cool_off = settings.AXES_COOLOFF_TIME
    if not cool_off:
        return "Too many failed login attempts: logging in is locked until an administrator lifts the lock."
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
    return (
        f"Too many failed login attempts: logging in is locked for {minutes} minute{'s' if minutes != 1 else ''}. "
        "Try again later, or ask an administrator to lift the lock."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: a 429 in place of the login answer. JSON ``{"detail", "code": "locked_out"}``
    under /api/ (the token endpoint), else a small HTML page (the admin's and the browsable API's login forms).
    ``Retry-After`` is the cool-off: every refused attempt is counted and starts the cool-off again."""
    from .middleware import is_api_path

    message = lockout_message()
    response: HttpResponse
    if is_api_path(request.path_info):
        response = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        page = format_html(LOCKOUT_PAGE, title="Too many login attempts", message=message)
        response = HttpResponse(page, status=429, content_type="text/html; charset=utf-8")
    if settings.AXES_COOLOFF_TIME:
        response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
