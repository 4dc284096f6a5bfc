"""Reports over projects: each counts only the issues of the projects the caller can see, ``project`` narrows it, and
a key the caller cannot see is answered exactly as an unknown one. The cost stays one or two queries."""

from datetime import timedelta

import pytest

from issues.access import access_for
from issues.models import Visibility
from reports import selectors
from tests.factories import ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import make_client
from tests.reports.conftest import DAY, HOUR, T0, create, update

pytestmark = pytest.mark.django_db

WINDOW = {"interval": "week", "since": "2026-03-02", "until": "2026-03-08"}


@pytest.fixture
def projects(db):
    """MAIN (internal): 1 issue of alice, resolved in 1 h. WEB (private, the caller is a viewer): 2 issues of bob,
    one resolved in 2 h. SECRET (private, the caller is no member): 3 issues of carol, all resolved in 10 h."""
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    main = default_project()
    web = ProjectFactory(key="WEB")
    secret = ProjectFactory(key="SECRET", visibility=Visibility.PRIVATE)
    add_member(bob, web, "member")
    add_member(carol, secret, "member")
    issue = create(T0, project=main, title="main", assignee=alice)
    update(issue, T0 + HOUR, status="resolved")
    issue = create(T0, project=web, title="web 1", assignee=bob)
    update(issue, T0 + 2 * HOUR, status="resolved")
    create(T0 + DAY, project=web, title="web 2", assignee=bob)
    for n in range(3):
        issue = create(T0 + DAY, project=secret, title=f"secret {n}", assignee=carol, labels=["bug"])
        update(issue, T0 + DAY + 10 * HOUR, status="closed")
    caller = UserFactory(username="caller")
    add_member(caller, web, "viewer")
    return {"main": main, "web": web, "secret": secret, "caller": caller}


def reports(client, **params):
    top = client.get("/api/reports/top-assignees", params)
    latency = client.get("/api/reports/latency", params)
    throughput = client.get("/api/reports/throughput", {**WINDOW, **params})
    assert (top.status_code, latency.status_code, throughput.status_code) == (200, 200, 200), (
        top.content,
        latency.content,
        throughput.content,
    )
    return top.json(), latency.json(), throughput.json()


def test_reports_count_only_the_projects_the_caller_can_see(projects):
    top, latency, throughput = reports(make_client(projects["caller"]))
    assert [(row["username"], row["issue_count"]) for row in top] == [("bob", 2), ("alice", 1)]
    assert latency["resolved_count"] == 2
    assert latency["average_resolution_seconds"] == 5400.0  # 1 h and 2 h; SECRET's 10 h never count
    assert throughput == [{"period": "2026-03-02", "created": 3, "resolved": 2}]


def test_nothing_of_an_invisible_project_shows_even_filtered_by_what_only_it_has(projects):
    client = make_client(projects["caller"])
    top, latency, _ = reports(client, label="bug")
    assert top == []
    assert latency["resolved_count"] == 0
    assert client.get("/api/reports/top-assignees", {"status": "closed"}).json() == []


def test_project_narrows_every_report(projects):
    top, latency, throughput = reports(make_client(projects["caller"]), project="web")
    assert [(row["username"], row["issue_count"]) for row in top] == [("bob", 2)]
    assert (latency["resolved_count"], latency["average_resolution_seconds"]) == (1, 7200.0)
    assert throughput == [{"period": "2026-03-02", "created": 2, "resolved": 1}]


def test_several_projects_repeated_or_as_a_comma_list(projects):
    client = make_client(projects["caller"])
    expected = reports(client)
    assert reports(client, project="MAIN,WEB") == expected
    assert reports(client, project=["MAIN", "web", "Main"]) == expected


def test_staff_see_every_project_and_narrow_to_any(projects, staff):
    client = make_client(staff)
    top, latency, throughput = reports(client)
    assert [(row["username"], row["issue_count"]) for row in top] == [("carol", 3), ("bob", 2), ("alice", 1)]
    assert latency["resolved_count"] == 5
    assert throughput == [{"period": "2026-03-02", "created": 6, "resolved": 5}]
    top, latency, _ = reports(client, project="SECRET")
    assert top == [{"assignee": top[0]["assignee"], "username": "carol", "issue_count": 3}]
    assert latency["resolved_count"] == 3


@pytest.mark.parametrize("report", ["top-assignees", "latency", "throughput"])
def test_an_invisible_project_is_answered_as_an_unknown_one(projects, report):
    client = make_client(projects["caller"])
    invisible = client.get(f"/api/reports/{report}", {"project": "SECRET"})
    unknown = client.get(f"/api/reports/{report}", {"project": "NOSUCH"})
    assert invisible.status_code == unknown.status_code == 400
    assert invisible.json() == {"project": ["Unknown project 'SECRET'."]}
    assert unknown.json() == {"project": ["Unknown project 'NOSUCH'."]}
    # With a visible key beside it, the invisible one is still the one named, as an unknown one would be.
    assert client.get(f"/api/reports/{report}", {"project": "WEB,SECRET"}).json() == invisible.json()


def test_a_project_made_private_leaves_the_reports_of_its_non_members(projects):
    client = make_client(UserFactory(username="outsider"))
    top, _, _ = reports(client)
    assert [(row["username"], row["issue_count"]) for row in top] == [("alice", 1)]
    main = projects["main"]
    main.visibility = Visibility.PRIVATE
    main.save()
    top, latency, throughput = reports(make_client(UserFactory(username="outsider2")))
    assert (top, latency["resolved_count"]) == ([], 0)
    assert throughput == [{"period": "2026-03-02", "created": 0, "resolved": 0}]


def test_cost_stays_one_or_two_queries_for_a_scoped_caller(projects, django_assert_num_queries):
    access = access_for(projects["caller"])
    web = [projects["web"].pk]
    since, until = T0, T0 + timedelta(weeks=1)
    with django_assert_num_queries(1):
        assert selectors.report_top_assignees(access, projects=web)[0]["issue_count"] == 2
    with django_assert_num_queries(1):
        assert selectors.report_latency(access, labels=["bug"]).resolved_count == 0
    with django_assert_num_queries(2):
        rows = selectors.report_throughput(access, projects=web, interval="week", since=since, until=until)
    assert rows == [{"period": T0.date(), "created": 2, "resolved": 1}]
