"""Request throttles: fixed-window counters in the default cache, rates read from ``settings.THROTTLE_RATES``.

Why not DRF's ``SimpleRateThrottle``: it copies its rates when the class is defined (a rate changed in
settings later is ignored), and it stores the timestamp of every request in the window, so a generous
rate such as 20000/minute pickles a 20,000-item list on every request. A counter per window costs one
``add`` and one ``incr`` (atomic in Redis), whatever the rate. The price is the usual fixed-window burst:
up to twice the rate across a window boundary.

A rate is ``"<count>/<period>"`` with period ``s``, ``m``, ``h`` or ``d`` (DRF's format); ``None`` turns
the throttle off. A refused request is a 429 with ``Retry-After`` (seconds until the window ends).
"""

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/m"`` → ``(30, 60)``. Raises ImproperlyConfigured on anything else."""
    try:
        count, period = rate.split("/")
        return int(count), PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError) as exc:
        raise ImproperlyConfigured(f"Invalid throttle rate {rate!r}; expected e.g. '100/minute'.") from exc


class FixedWindowThrottle(BaseThrottle):
    """Allows ``count`` requests per ``period`` for each identity (see ``identity``) in scope ``scope``."""

    scope: str = ""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def get_scope(self, view: Any) -> str:
        return self.scope

    def identity(self, request: Request) -> str | None:
        """Who is counted; None means not throttled by this class."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = self.get_scope(view)
        rate = getattr(settings, "THROTTLE_RATES", {}).get(scope) if scope else None
        if not rate:
            return True
        ident = self.identity(request)
        if ident is None:
            return True
        count, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"throttle:{scope}:{ident}:{period}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            seen = cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            seen = 1
        if seen <= count:
            return True
        self.wait_seconds = max(1, math.ceil((window + 1) * period - now))
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


class AnonRateThrottle(FixedWindowThrottle):
    """Anonymous callers, per client address: scope ``anon``."""

    scope = "anon"

    def identity(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.get_ident(request)


class UserRateThrottle(FixedWindowThrottle):
    """Authenticated callers, per user: scope ``user``."""

    scope = "user"

    def identity(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return None


class ScopedRateThrottle(FixedWindowThrottle):
    """Views naming a ``throttle_scope`` (``auth`` for ``POST /api/auth/token``): per user, or per address."""

    def get_scope(self, view: Any) -> str:
        return getattr(view, "throttle_scope", "") or ""

    def identity(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return self.get_ident(request)
