"""Throttling: 429 with Retry-After once a rate is used up, per user / per address / per scope,
with rates read from settings (THROTTLE_RATES, set from THROTTLE_* variables)."""

import os
import uuid

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.throttling import parse_rate
from tests.factories import UserFactory
from tests.helpers import make_client


@pytest.fixture
def rates(settings):
    settings.THROTTLE_RATES = {"anon": "3/minute", "user": "5/minute", "auth": "2/minute"}
    cache.clear()
    yield settings.THROTTLE_RATES
    cache.clear()


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_user_rate_gives_429_with_retry_after_and_counts_per_user(rates, member_client, maintainer_client) -> None:
    for _ in range(5):
        assert member_client.get("/api/issues").status_code == 200
    assert_throttled(member_client.get("/api/issues"))
    assert_throttled(member_client.post("/api/issues", {"title": "x"}, format="json"))
    assert maintainer_client.get("/api/issues").status_code == 200  # another user has their own budget


def test_anonymous_rate_counts_per_address(rates, db) -> None:
    client = APIClient()
    for _ in range(3):
        assert client.get("/api/health").status_code == 200
    assert_throttled(client.get("/api/health"))
    assert APIClient(REMOTE_ADDR="10.9.8.7").get("/api/health").status_code == 200


def test_token_endpoint_is_stricter_and_counts_failed_and_good_logins(rates, settings, db) -> None:
    settings.THROTTLE_RATES = {**rates, "anon": "10/minute"}
    UserFactory(username="alice", role="member")
    client = APIClient()
    assert client.post("/api/auth/token", {"username": "alice", "password": "wrong"}, format="json").status_code == 400
    assert client.post("/api/auth/token", {"username": "alice", "password": "password-123"}).status_code == 200
    assert_throttled(client.post("/api/auth/token", {"username": "alice", "password": "password-123"}))
    # The auth scope does not spend the other budgets.
    assert client.get("/api/health").status_code == 200


def test_a_rate_of_none_turns_the_throttle_off(rates, settings, member_client) -> None:
    settings.THROTTLE_RATES = {**rates, "user": None}
    for _ in range(12):
        assert member_client.get("/api/issues").status_code == 200


@pytest.mark.parametrize(("rate", "parsed"), [("5/minute", (5, 60)), ("1/s", (1, 1)), ("100/hour", (100, 3600))])
def test_parse_rate(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


def test_throttle_counters_live_in_redis_when_configured(settings, db) -> None:
    redis = pytest.importorskip("redis")
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}
    }
    settings.THROTTLE_RATES = {"anon": None, "user": "2/minute", "auth": None}
    client = make_client(UserFactory(username="redis-user", role="member"))
    try:
        assert client.get("/api/issues").status_code == 200
        assert client.get("/api/issues").status_code == 200
        assert_throttled(client.get("/api/issues"))
        keys = redis.Redis.from_url(url).keys(f"{prefix}:*throttle:user:*")
        assert len(keys) == 1
    finally:
        connection = redis.Redis.from_url(url)
        for key in connection.keys(f"{prefix}:*"):
            connection.delete(key)


def test_redis_url_selects_the_redis_cache_backend() -> None:
    import subprocess
    import sys

    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "issue_tracker.test_settings"}
    for redis_url, backend in (("redis://127.0.0.1:6379/0", "RedisCache"), ("", "LocMemCache")):
        env["REDIS_URL"] = redis_url
        out = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert out.strip().endswith(backend)
