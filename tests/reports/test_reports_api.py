"""The report endpoints as HTTP: permissions, routes, parameter validation and the OpenAPI schema."""

import pytest

from tests.factories import UserFactory
from tests.helpers import make_client, openapi

pytestmark = pytest.mark.django_db

REPORTS = ("top-assignees", "latency", "throughput")


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("slash", ["", "/"])
def test_answers_with_and_without_trailing_slash(viewer_client, report, slash):
    response = viewer_client.get(f"/api/reports/{report}{slash}")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("report", REPORTS)
def test_anonymous_is_401_and_any_authenticated_user_may_read(db, anon_client, report):
    """A report counts what the caller can see, so any authenticated caller may ask: one without a membership
    still sees the internal default project (tests/reports/test_report_projects.py checks what is counted)."""
    response = anon_client.get(f"/api/reports/{report}")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    nobody = make_client(UserFactory(username="nobody"))
    assert nobody.get(f"/api/reports/{report}").status_code == 200
    assert nobody.head(f"/api/reports/{report}").status_code == 200


@pytest.mark.parametrize("report", REPORTS)
def test_writes_are_405(member_client, report):
    response = member_client.post(f"/api/reports/{report}", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("report", "params", "name"),
    [
        ("top-assignees", {"limit": "0"}, "limit"),
        ("top-assignees", {"limit": "101"}, "limit"),
        ("top-assignees", {"limit": "-1"}, "limit"),
        ("top-assignees", {"limit": "ten"}, "limit"),
        ("top-assignees", {"limit": "1.5"}, "limit"),
        ("top-assignees", {"limit": "9" * 400}, "limit"),
        ("top-assignees", {"limit": "1\x00"}, "limit"),
        ("top-assignees", {"status": "done"}, "status"),
        ("top-assignees", {"status": "open,\x00"}, "status"),
        ("top-assignees", {"label": "x" * 51}, "label"),
        ("top-assignees", {"label": "bug\x00"}, "label"),
        ("top-assignees", {"label": [f"l{n}" for n in range(21)]}, "label"),  # more than 20 distinct names
        ("top-assignees", {"label": ",".join(f"l{n}" for n in range(1000))}, "label"),
        ("top-assignees", {"status": "open,closed,resolved,in_progress,done"}, "status"),
        ("latency", {"label": [f"l{n}" for n in range(1000)]}, "label"),
        ("latency", {"priority": [f"p{n}" for n in range(1000)]}, "priority"),
        ("top-assignees", {"since": "yesterday"}, "since"),
        ("top-assignees", {"since": "2026-02-30"}, "since"),
        ("top-assignees", {"since": "2026-03-01T25:00:00Z"}, "since"),
        ("top-assignees", {"since": "2026-03-01\x00"}, "since"),
        ("top-assignees", {"until": "9999-12-31"}, "until"),  # the end of that day is past year 9999
        ("top-assignees", {"until": "9999-12-31T23:00:00-05:00"}, "until"),
        ("top-assignees", {"since": "2026-03-02", "until": "2026-03-01"}, "until"),
        ("top-assignees", {"since": "2026-03-02T10:00:00+25:00"}, "since"),
        ("top-assignees", {"since": "0000-01-01"}, "since"),
        ("top-assignees", {"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ("top-assignees", {"since": "2026-03-02" + " " * 200}, "since"),
        ("latency", {"assignee": "bob"}, "assignee"),
        ("latency", {"assignee": "0"}, "assignee"),
        ("latency", {"assignee": str(2**63)}, "assignee"),
        ("latency", {"assignee": "\x00"}, "assignee"),
        ("latency", {"assignee": "١٢"}, "assignee"),  # non-ASCII digits
        ("latency", {"priority": "urgent"}, "priority"),
        ("latency", {"since": "2026-13-01"}, "since"),
        ("latency", {"since": "2026-03-02T10:00:00Z", "until": "2026-03-02T10:00:00Z"}, "until"),
        ("throughput", {"interval": "year"}, "interval"),
        ("throughput", {"interval": "day\x00"}, "interval"),
        ("throughput", {"since": "0001-01-01", "interval": "day"}, "since"),  # more than 1,000 periods
        ("throughput", {"since": "2100-01-01"}, "until"),  # after the default `until` (now)
        ("throughput", {"until": "nope"}, "until"),
        ("top-assignees", {"project": "NOPE"}, "project"),
        ("latency", {"project": "MAIN,NOPE"}, "project"),
        ("throughput", {"project": ["MAIN", "nope"]}, "project"),
        ("latency", {"project": "X" * 11}, "project"),
        ("top-assignees", {"project": "MAIN\x00"}, "project"),
        ("throughput", {"project": [f"P{n}" for n in range(101)]}, "project"),  # more than 100 distinct keys
    ],
)
def test_invalid_parameters_are_400_naming_the_parameter(viewer_client, report, params, name):
    response = viewer_client.get(f"/api/reports/{report}", params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [name], body


@pytest.mark.parametrize(
    ("report", "params", "name", "cap"),
    [
        ("top-assignees", {"label": [f"l{n}" for n in range(1000)]}, "label", 20),
        ("top-assignees", {"status": [f"s{n}" for n in range(1000)]}, "status", 4),
        ("latency", {"label": ",".join(f"l{n}" for n in range(21))}, "label", 20),
        ("latency", {"priority": "a,b,c,d,e"}, "priority", 4),
    ],
)
def test_too_many_values_is_a_400_saying_the_cap(viewer_client, report, params, name, cap):
    response = viewer_client.get(f"/api/reports/{report}", params)
    assert response.status_code == 400
    assert response.json() == {name: [f"At most {cap} values are allowed."]}


def test_twenty_distinct_labels_are_accepted(viewer_client):
    names = [f"l{n}" for n in range(20)]
    assert viewer_client.get("/api/reports/top-assignees", {"label": names}).status_code == 200
    assert viewer_client.get("/api/reports/latency", {"label": names + [n.upper() for n in names]}).status_code == 200


def test_empty_values_count_as_absent_and_unknown_parameters_are_ignored(viewer_client):
    response = viewer_client.get("/api/reports/top-assignees", {"limit": "", "since": "", "whatever": "1"})
    assert response.status_code == 200
    assert viewer_client.get("/api/reports/latency", {"assignee": " ", "priority": ""}).status_code == 200


def test_wide_windows_within_limits_are_fine(viewer_client):
    rows = viewer_client.get("/api/reports/throughput", {"interval": "month", "since": "0001-01-01"})
    assert rows.status_code == 400  # about 24,300 months
    response = viewer_client.get("/api/reports/throughput", {"interval": "month", "since": "1950-01-01"})
    assert response.status_code == 200
    assert response.json()[0] == {"period": "1950-01-01", "created": 0, "resolved": 0}
    response = viewer_client.get(
        "/api/reports/throughput", {"interval": "day", "since": "9999-10-01", "until": "9999-12-31T00:00:00Z"}
    )
    assert response.status_code == 200
    assert response.json()[-1]["period"] == "9999-12-30"


def test_reports_are_in_the_openapi_schema_with_their_shapes(db, anon_client):
    schema, paths = openapi(anon_client)
    latency = paths["/api/reports/latency"]["get"]
    assert {p["name"] for p in latency["parameters"]} >= {"project", "since", "until", "assignee", "label", "priority"}
    ref = latency["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert set(fields) == {
        "resolved_count",
        "average_resolution_seconds",
        "median_resolution_seconds",
        "p90_resolution_seconds",
        "average_resolution_time",
    }
    top = paths["/api/reports/top-assignees"]["get"]
    assert {p["name"] for p in top["parameters"]} == {"project", "limit", "status", "label", "since", "until"}
    assert top["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    throughput = paths["/api/reports/throughput"]["get"]
    assert {p["name"] for p in throughput["parameters"]} == {"project", "interval", "since", "until"}
    assert "400" in throughput["responses"]
