"""Settings for the test suite: the real settings, with a throwaway key and a fast password hasher."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
# Throttling is off for the suite (the throttle counters would carry over from test to test);
# tests/hardening/test_throttling.py turns it on with its own rates.
THROTTLE_RATES = {"anon": None, "user": None, "auth": None}
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405 - live-server threads must not keep connections open
# Each test client builds its own middleware chain, and WhiteNoise's middleware reads every static file at
# construction unless it autorefreshes (looks files up per request, as in development): that read was half the
# time of a typical test.
WHITENOISE_AUTOREFRESH = True
