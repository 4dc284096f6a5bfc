"""A fixed scenario with controlled timestamps, written through the real services.

T0 is Monday 2026-03-02 00:00 UTC. Weeks: W1 = Mar 2–8, W2 = Mar 9–15 (no activity at all), W3 = Mar 16–22.

| issue | assignee | priority | labels | created | resolution history | counted seconds |
|---|---|---|---|---|---|---|
| A | alice | high | bug | T0 | resolved T0+1h | 3,600 |
| B | alice | medium |  | T0 | resolved T0+2h | 7,200 |
| C | bob | high | bug | T0+1d | closed T0+1d+4h | 14,400 |
| D | carol | medium |  | T0+1d | resolved T0+1d+8h, reopened T0+3d, resolved T0+15d | 1,209,600 (14 d) |
| E | carol | low |  | T0+2d | resolved T0+2d+1h, closed T0+2d+5h, edited T0+20d | 3,600 |
| H | — | low |  | T0+2d | resolved T0+2d+30min | 1,800 |
| F | bob | medium |  | T0+1d | open | — |
| G | — | medium |  | T0 | in_progress | — |
| I | bob | critical |  | T0+16d | open | — |
"""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from issues import services
from issues.models import Issue
from tests.factories import UserFactory, default_project

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@contextmanager
def frozen(moment: datetime):
    """``timezone.now()`` returns ``moment`` everywhere (services and events read it at call time)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def create(at: datetime, **fields) -> Issue:
    """An issue created by the service at ``at``, in the default project unless ``project`` is given."""
    fields.setdefault("project", default_project())
    with frozen(at):
        return services.issue_create(actor=None, **fields)


def update(issue: Issue, at: datetime, **changes) -> Issue:
    with frozen(at):
        updated, changed = services.issue_update(issue_id=issue.pk, actor=None, expected_version=None, changes=changes)
    assert changed
    return updated


@pytest.fixture
def people(db):
    return {name: UserFactory(username=name) for name in ("alice", "bob", "carol")}


@pytest.fixture
def scenario(people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    issues = {
        "A": create(T0, title="A", assignee=alice, priority="high", labels=["bug"]),
        "B": create(T0, title="B", assignee=alice),
        "G": create(T0, title="G", status="in_progress"),
        "C": create(T0 + DAY, title="C", assignee=bob, priority="high", labels=["Bug"]),
        "D": create(T0 + DAY, title="D", assignee=carol),
        "F": create(T0 + DAY, title="F", assignee=bob),
        "E": create(T0 + 2 * DAY, title="E", assignee=carol, priority="low"),
        "H": create(T0 + 2 * DAY, title="H", priority="low"),
    }
    update(issues["A"], T0 + HOUR, status="resolved")
    update(issues["B"], T0 + 2 * HOUR, status="resolved")
    update(issues["C"], T0 + DAY + 4 * HOUR, status="closed")
    update(issues["D"], T0 + DAY + 8 * HOUR, status="resolved")
    update(issues["D"], T0 + 3 * DAY, status="open")
    update(issues["E"], T0 + 2 * DAY + HOUR, status="resolved")
    update(issues["E"], T0 + 2 * DAY + 5 * HOUR, status="closed")
    update(issues["H"], T0 + 2 * DAY + 30 * timedelta(minutes=1), status="resolved")
    update(issues["D"], T0 + 15 * DAY, status="resolved")
    issues["I"] = create(T0 + 16 * DAY, title="I", assignee=bob, priority="critical")
    update(issues["E"], T0 + 20 * DAY, title="E, retitled after closing")
    return {key: Issue.objects.get(pk=issue.pk) for key, issue in issues.items()}
