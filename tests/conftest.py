"""Shared fixtures: a user of each role and an API client authenticated as each (helpers: tests/helpers.py,
factories: tests/factories.py). The suite runs on PostgreSQL, as the product does; nothing in it is skipped for
want of a database feature."""

import pytest
from django.core.servers.basehttp import WSGIServer
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.helpers import make_client

# The live server's listen backlog (Django's default is 10) must hold the 32 connections the race
# tests open at the same instant; a full backlog resets connections, which is not what they test.
WSGIServer.request_queue_size = 128


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

    from tests.factories import ensure_role_groups

    ensure_role_groups()  # a transactional test before this one flushed the group
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
