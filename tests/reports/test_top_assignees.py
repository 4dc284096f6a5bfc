"""GET /api/reports/top-assignees: most assigned issues first, ties by username, unassigned never listed."""

import pytest

from issues.access import SYSTEM
from reports import selectors
from tests.factories import UserFactory
from tests.reports.conftest import DAY, T0, create

pytestmark = pytest.mark.django_db


def ranking(client, **params) -> list[tuple[str, int]]:
    response = client.get("/api/reports/top-assignees", params)
    assert response.status_code == 200, response.content
    return [(row["username"], row["issue_count"]) for row in response.json()]


def test_counts_and_order_with_ties_by_username(scenario, people, viewer_client):
    response = viewer_client.get("/api/reports/top-assignees")
    assert response.json() == [
        {"assignee": people["bob"].pk, "username": "bob", "issue_count": 3},
        {"assignee": people["alice"].pk, "username": "alice", "issue_count": 2},
        {"assignee": people["carol"].pk, "username": "carol", "issue_count": 2},
    ]


def test_unassigned_issues_never_appear(scenario, viewer_client):
    # G and H are unassigned; even when the filters keep only unassigned issues, no null entry appears.
    rows = viewer_client.get("/api/reports/top-assignees", {"status": "in_progress"}).json()
    assert rows == []
    assert all(row["assignee"] is not None for row in viewer_client.get("/api/reports/top-assignees").json())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "open"}, [("bob", 2)]),  # F, I
        ({"status": ["resolved", "closed"]}, [("alice", 2), ("carol", 2), ("bob", 1)]),
        ({"status": "resolved,closed"}, [("alice", 2), ("carol", 2), ("bob", 1)]),
        ({"label": "bug"}, [("alice", 1), ("bob", 1)]),  # A, C ("Bug" is the same label)
        ({"label": ["bug", "missing"]}, []),  # every label must match
        ({"label": ["bug", "BUG", "Bug"] * 300}, [("alice", 1), ("bob", 1)]),  # de-duplicated ignoring case
        ({"status": ["open"] * 1000}, [("bob", 2)]),  # de-duplicated: one value, under the cap
        ({"since": "2026-03-03"}, [("bob", 3), ("carol", 2)]),  # created from Mar 3: C, F, I / D, E
        ({"until": "2026-03-02"}, [("alice", 2)]),  # created on Mar 2: A, B
        ({"since": "2026-03-03T00:00:00Z", "until": "2026-03-04T00:00:00Z"}, [("bob", 2), ("carol", 1)]),
        ({"limit": 1}, [("bob", 3)]),
        ({"limit": 2}, [("bob", 3), ("alice", 2)]),
        ({"limit": 100}, [("bob", 3), ("alice", 2), ("carol", 2)]),
    ],
)
def test_filters_and_limit(scenario, viewer_client, params, expected):
    assert ranking(viewer_client, **params) == expected


def test_default_limit_is_ten_and_ties_are_alphabetical(db, viewer_client):
    users = [UserFactory(username=f"user-{letter}") for letter in "lkjihgfedcba"]
    for user in users:
        create(T0, title="x", assignee=user)
    rows = ranking(viewer_client)
    assert rows == [(f"user-{letter}", 1) for letter in "abcdefghij"]


def test_cost_is_one_query_whatever_the_number_of_issues(scenario, people, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = selectors.report_top_assignees(
            SYSTEM, statuses=["closed"], labels=["bug"], since=T0, until=T0 + 30 * DAY
        )
    assert [(row["username"], row["issue_count"]) for row in rows] == [("bob", 1)]
    for n in range(25):
        create(T0, title=f"more {n}", assignee=people["carol"] if n % 2 else people["alice"])
    with django_assert_num_queries(1):
        rows = selectors.report_top_assignees(SYSTEM, limit=2)
    assert [(row["username"], row["issue_count"]) for row in rows] == [("alice", 15), ("carol", 14)]
