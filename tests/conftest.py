"""Shared fixtures. PostgreSQL-only tests carry ``@pytest.mark.postgres``: on SQLite they skip saying why,
and with REQUIRE_POSTGRES=1 the whole run refuses to start on anything but PostgreSQL."""

import os

import pytest
from django.core.servers.basehttp import WSGIServer
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"

# The live server's listen backlog (Django's default is 10) must hold the 32 connections the race
# tests open at the same instant; a full backlog resets connections, which is not what they test.
WSGIServer.request_queue_size = 128


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_POSTGRES:
        import django

        django.setup()
        if connection.vendor != "postgresql":
            raise pytest.UsageError(
                f"REQUIRE_POSTGRES=1 but the database is {connection.vendor}; set DATABASE_URL to PostgreSQL."
            )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.db import connection as conn

    if conn.vendor == "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            # @pytest.mark.postgres(reason="...") says what of PostgreSQL the test needs.
            needs = marker.kwargs.get("reason", "row locks, real concurrency")
            reason = f"needs PostgreSQL ({needs}); this run uses {conn.vendor}. Set DATABASE_URL."
            item.add_marker(pytest.mark.skip(reason=reason))


def make_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", role="viewer")


@pytest.fixture
def member(db):
    return UserFactory(username="member", role="member")


@pytest.fixture
def maintainer(db):
    return UserFactory(username="maintainer", role="maintainer")


@pytest.fixture
def staff(db):
    from django.contrib.auth.models import Group

    user = UserFactory(username="staffer", role="maintainer", is_staff=True)
    user.groups.add(Group.objects.get(name="staff"))
    return user


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def viewer_client(viewer) -> APIClient:
    return make_client(viewer)


@pytest.fixture
def member_client(member) -> APIClient:
    return make_client(member)


@pytest.fixture
def maintainer_client(maintainer) -> APIClient:
    return make_client(maintainer)


@pytest.fixture
def staff_client(staff) -> APIClient:
    return make_client(staff)
