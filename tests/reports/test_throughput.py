"""GET /api/reports/throughput: created and resolved per period, idle periods of the window as zeros."""

from datetime import UTC, datetime

import pytest

from issues.access import SYSTEM
from reports import selectors
from tests.factories import IssueFactory
from tests.reports.conftest import DAY, HOUR, T0, frozen

pytestmark = pytest.mark.django_db


def get(client, **params):
    response = client.get("/api/reports/throughput", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_weeks_with_an_idle_week_as_zeros(scenario, viewer_client):
    # Created: A B G C D F E H in W1, I in W3. Resolved now: A B C E H in W1, D in W3 (its first resolution
    # in W1 was undone by the reopening). W2 has no activity and still appears.
    assert get(viewer_client, interval="week", since="2026-03-02", until="2026-03-22") == [
        {"period": "2026-03-02", "created": 8, "resolved": 5},
        {"period": "2026-03-09", "created": 0, "resolved": 0},
        {"period": "2026-03-16", "created": 1, "resolved": 1},
    ]


def test_days(scenario, viewer_client):
    rows = get(viewer_client, interval="day", since="2026-03-01", until="2026-03-05")
    assert rows == [
        {"period": "2026-03-01", "created": 0, "resolved": 0},
        {"period": "2026-03-02", "created": 3, "resolved": 2},  # A B G / A B
        {"period": "2026-03-03", "created": 3, "resolved": 1},  # C D F / C
        {"period": "2026-03-04", "created": 2, "resolved": 2},  # E H / E H
        {"period": "2026-03-05", "created": 0, "resolved": 0},  # D's reopening is not a resolution
    ]


def test_months_and_a_window_that_cuts_periods(scenario, viewer_client):
    rows = get(viewer_client, interval="month", since="2026-02-15", until="2026-04-10")
    assert rows == [
        {"period": "2026-02-01", "created": 0, "resolved": 0},
        {"period": "2026-03-01", "created": 9, "resolved": 6},
        {"period": "2026-04-01", "created": 0, "resolved": 0},
    ]
    # Only activity inside the window counts, also in its first and last periods.
    rows = get(viewer_client, interval="week", since="2026-03-03T00:00:00Z", until="2026-03-17T00:00:00Z")
    assert rows == [
        {"period": "2026-03-02", "created": 5, "resolved": 3},  # C D F E H / C E H
        {"period": "2026-03-09", "created": 0, "resolved": 0},
        {"period": "2026-03-16", "created": 0, "resolved": 0},  # D resolved on the 17th, I created on the 18th
    ]


def test_default_window_is_twelve_weeks_up_to_now(scenario, viewer_client):
    with frozen(T0 + 16 * DAY + 12 * HOUR):
        rows = get(viewer_client)
    assert len(rows) == 12
    assert rows[0]["period"] == "2025-12-29"
    assert rows[-3:] == [
        {"period": "2026-03-02", "created": 8, "resolved": 5},
        {"period": "2026-03-09", "created": 0, "resolved": 0},
        {"period": "2026-03-16", "created": 1, "resolved": 1},
    ]


def test_default_windows_per_interval(db, viewer_client):
    with frozen(datetime(2026, 3, 18, 12, tzinfo=UTC)):
        days = get(viewer_client, interval="day")
        months = get(viewer_client, interval="month")
        since_only = get(viewer_client, interval="month", since="2026-01-20")
    assert [days[0]["period"], days[-1]["period"], len(days)] == ["2026-02-17", "2026-03-18", 30]
    assert [months[0]["period"], months[-1]["period"], len(months)] == ["2025-04-01", "2026-03-01", 12]
    assert [row["period"] for row in since_only] == ["2026-01-01", "2026-02-01", "2026-03-01"]


def test_periods_are_utc(db, viewer_client):
    IssueFactory(created_at=datetime(2026, 3, 8, 23, 30, tzinfo=UTC))  # Sunday night UTC, Monday in Berlin
    rows = get(viewer_client, interval="week", since="2026-03-02", until="2026-03-15")
    assert rows == [
        {"period": "2026-03-02", "created": 1, "resolved": 0},
        {"period": "2026-03-09", "created": 0, "resolved": 0},
    ]


def test_cost_is_two_queries_whatever_the_number_of_issues(scenario, django_assert_num_queries):
    since, until = T0, T0 + 21 * DAY
    with django_assert_num_queries(2):
        before = selectors.report_throughput(SYSTEM, interval="day", since=since, until=until)
    IssueFactory.create_batch(30, created_at=T0 + 5 * DAY)
    with django_assert_num_queries(2):
        after = selectors.report_throughput(SYSTEM, interval="day", since=since, until=until)
    assert len(before) == len(after) == 21
    assert after[5]["created"] == before[5]["created"] + 30


@pytest.mark.parametrize(
    ("interval", "until"), [("month", "0001-01-01"), ("week", "0001-01-02"), ("day", "0001-01-01T00:00:00")]
)
def test_default_window_before_year_one_is_400(member_client, interval, until):
    response = member_client.get("/api/reports/throughput", {"interval": interval, "until": until})
    assert response.status_code == 400
    assert "until" in response.json()
