"""GET /api/reports/latency: resolution = resolved_at − created_at of issues now resolved/closed."""

from datetime import timedelta

import pytest

from issues.access import SYSTEM
from reports import selectors
from tests.factories import UserFactory
from tests.reports.conftest import DAY, HOUR, T0, create, frozen, update

pytestmark = pytest.mark.django_db

# Counted durations of the scenario, sorted: H, A, E, B, C, D.
DURATIONS = [1800, 3600, 3600, 7200, 14400, 1209600]


def percentile_cont(values: list[float], fraction: float) -> float:
    """The definition of percentile_cont, by hand: linear interpolation between the two nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def test_hand_computed_expectations_match_the_definition():
    # The literal figures asserted below, derived by hand (positions 2.5 and 4.5 of 6 sorted values).
    assert sum(DURATIONS) / 6 == 206700
    assert percentile_cont(DURATIONS, 0.5) == 5400  # 3600 + 0.5 × (7200 − 3600)
    assert percentile_cont(DURATIONS, 0.9) == 612000  # 14400 + 0.5 × (1209600 − 14400)


def test_scenario_gives_exact_count_mean_median_p90(scenario, viewer_client):
    response = viewer_client.get("/api/reports/latency")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "resolved_count": 6,
        "average_resolution_seconds": 206700.0,
        "median_resolution_seconds": 5400.0,
        "p90_resolution_seconds": 612000.0,
        "average_resolution_time": "2 09:25:00",
    }


def test_selector_gives_exact_figures(scenario):
    report = selectors.report_latency(SYSTEM)
    assert report == selectors.LatencyReport(6, 206700.0, 5400.0, 612000.0)


@pytest.mark.parametrize(
    ("params", "durations"),
    [
        ({"assignee": "alice"}, [3600, 7200]),  # A, B
        ({"assignee": "none"}, [1800]),  # H; G is unassigned but not resolved
        ({"priority": "high"}, [3600, 14400]),  # A, C
        ({"priority": "low,high"}, [3600, 14400, 3600, 1800]),  # A, C, E, H
        ({"label": "BUG"}, [3600, 14400]),  # A, C (label names ignore case)
        ({"label": ["bug", "BUG", "Bug"] * 300}, [3600, 14400]),  # one name, de-duplicated ignoring case
        ({"label": "bug,missing"}, []),  # every label must match
        ({"priority": ["high"] * 1000}, [3600, 14400]),  # de-duplicated: one value, under the cap
        ({"since": "2026-03-10"}, [1209600]),  # D, resolved again on Mar 17
        ({"until": "2026-03-02"}, [3600, 7200]),  # resolved on Mar 2 (a date `until` includes the day)
        ({"since": "2026-03-03T04:00:00Z", "until": "2026-03-04T00:30:00Z"}, [14400]),  # C; H at 00:30 is out
        ({"since": "2026-03-03T05:00:00+01:00", "until": "2026-03-03T04:00:01Z"}, [14400]),  # offsets are honoured
        ({"priority": "critical"}, []),
    ],
)
def test_filters(scenario, people, viewer_client, params, durations):
    if params.get("assignee") == "alice":
        params = {**params, "assignee": people["alice"].pk}
    body = viewer_client.get("/api/reports/latency", params).json()
    assert body["resolved_count"] == len(durations)
    if durations:
        assert body["average_resolution_seconds"] == pytest.approx(sum(durations) / len(durations), abs=1e-6)
        assert body["median_resolution_seconds"] == pytest.approx(percentile_cont(durations, 0.5), abs=1e-6)
        assert body["p90_resolution_seconds"] == pytest.approx(percentile_cont(durations, 0.9), abs=1e-6)
    else:
        assert body["average_resolution_seconds"] is None
        assert body["median_resolution_seconds"] is None
        assert body["p90_resolution_seconds"] is None
        assert body["average_resolution_time"] is None


def test_alice_p90_interpolates_between_two_rows(scenario, people, viewer_client):
    body = viewer_client.get("/api/reports/latency", {"assignee": people["alice"].pk}).json()
    assert body["median_resolution_seconds"] == 5400.0  # 3600 + 0.5 × 3600
    assert body["p90_resolution_seconds"] == 6840.0  # 3600 + 0.9 × 3600
    assert body["average_resolution_time"] == "01:30:00"


def test_empty_database_gives_nulls(db, viewer_client):
    body = viewer_client.get("/api/reports/latency").json()
    assert body == {
        "resolved_count": 0,
        "average_resolution_seconds": None,
        "median_resolution_seconds": None,
        "p90_resolution_seconds": None,
        "average_resolution_time": None,
    }


def test_single_issue_and_subsecond_precision(db):
    issue = create(T0, title="x")
    update(issue, T0 + timedelta(seconds=90, microseconds=250_001), status="closed")
    assert selectors.report_latency(SYSTEM) == selectors.LatencyReport(1, 90.250001, 90.250001, 90.250001)


def test_editing_a_closed_issue_through_the_api_keeps_its_resolution_time(db, member_client):
    issue = create(T0, title="x")
    update(issue, T0 + 2 * HOUR, status="closed")
    before = selectors.report_latency(SYSTEM)
    assert before.resolved_count == 1
    assert before.average_seconds == 7200
    with frozen(T0 + 30 * DAY):
        response = member_client.patch(
            f"/api/issues/{issue.pk}",
            {"title": "retitled", "priority": "high", "status": "resolved", "version": 2},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert response.json()["updated_at"].startswith("2026-04-01")
    assert response.json()["resolved_at"].startswith("2026-03-02T02:00:00")
    assert selectors.report_latency(SYSTEM) == before


def test_reopening_removes_the_issue_until_it_is_resolved_again(db, member_client):
    issue = create(T0, title="x")
    update(issue, T0 + HOUR, status="resolved")
    assert selectors.report_latency(SYSTEM) == selectors.LatencyReport(1, 3600.0, 3600.0, 3600.0)
    with frozen(T0 + DAY):
        response = member_client.patch(f"/api/issues/{issue.pk}", {"status": "open", "version": 2}, format="json")
    assert response.status_code == 200, response.content
    assert selectors.report_latency(SYSTEM) == selectors.LatencyReport(0, None, None, None)
    with frozen(T0 + 3 * DAY):
        response = member_client.patch(f"/api/issues/{issue.pk}", {"status": "closed", "version": 3}, format="json")
    assert response.status_code == 200, response.content
    assert selectors.report_latency(SYSTEM) == selectors.LatencyReport(1, 259200.0, 259200.0, 259200.0)


def test_cost_is_one_query_whatever_the_number_of_issues(scenario, django_assert_num_queries):
    with django_assert_num_queries(1):
        small = selectors.report_latency(SYSTEM, labels=["bug"], priorities=["high"])
    assert small.resolved_count == 2
    bob = UserFactory(username="dave")
    for n in range(25):
        issue = create(T0 + n * HOUR, title=f"more {n}", assignee=bob)
        update(issue, T0 + n * HOUR + timedelta(minutes=n + 1), status="closed")
    with django_assert_num_queries(1):
        report = selectors.report_latency(SYSTEM)
    assert report.resolved_count == 31
