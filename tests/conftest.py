"""Shared fixtures: a user of each role and an API client authenticated as each (helpers: tests/helpers.py,
factories: tests/factories.py). The suite runs on PostgreSQL, as the product does; nothing in it is skipped for
want of a database feature."""

import threading
import time

import pytest
from django.core.servers.basehttp import WSGIServer
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.helpers import make_client

# The live server's listen backlog (Django's default is 10) must hold the 32 connections the race
# tests open at the same instant; a full backlog resets connections, which is not what they test.
WSGIServer.request_queue_size = 128

# Without a broker, a job and the search indexing after an import run on threads of this process
# (jobs.services, issues.search_index). One still running when a test ends would hold locks on the
# tables its database flush truncates (a lock timeout in teardown), or write into the next test: each
# test waits for them before its fixtures are torn down.
BACKGROUND_THREADS = ("job-", "search-index")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    deadline = time.monotonic() + 300
    while running := [
        t
        for t in threading.enumerate()
        if t.name.startswith(BACKGROUND_THREADS) and t.is_alive() and not t.name.startswith("job-heartbeat")
    ]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"background threads still running after the test: {running}")
        running[0].join(max(0.0, deadline - time.monotonic()))
    yield


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
