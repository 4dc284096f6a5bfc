"""Issues in projects: create in a project (the default one when none is named), numbers and keys, the `project`
filter and its kept count, assignees who must see the project, and nothing of a project the caller cannot see."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from issues.models import Issue, Project, Visibility
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import assert_json_error, make_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def web():
    return ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)


@pytest.fixture
def web_member(web):
    user = UserFactory(username="webdev")
    add_member(user, web, "member")
    return user


def test_a_client_that_names_no_project_works_as_before(member_client):
    body = member_client.post("/api/issues", {"title": "Old client"}, format="json").json()
    main = default_project()
    assert body["project"] == main.key == "MAIN"
    assert body["key"] == f"MAIN-{body['number']}"
    assert Issue.objects.get(pk=body["id"]).project_id == main.pk
    listed = member_client.get("/api/issues").json()
    assert listed["count"] == 1 and listed["results"][0]["key"] == body["key"]


def test_create_in_a_project_numbers_its_issues_one_after_another(web_member, web):
    client = make_client(web_member)
    first = client.post("/api/issues", {"title": "a", "project": "web"}, format="json")
    assert first.status_code == 201, first.content
    second = client.post("/api/issues", {"title": "b", "project": "WEB", "labels": ["Bug"]}, format="json").json()
    assert first.json()["project"] == second["project"] == "WEB"
    assert second["number"] == first.json()["number"] + 1
    assert second["key"] == f"WEB-{second['number']}"
    # The label was created in the issue's project.
    assert list(web.labels.values_list("name", flat=True)) == ["Bug"]
    # The default project numbers on its own; there this member of WEB is a viewer (it is internal): no create.
    assert_json_error(client.post("/api/issues", {"title": "c"}, format="json"), 403)
    main_member = make_client(UserFactory(username="maindev", role="member"))
    other = main_member.post("/api/issues", {"title": "c"}, format="json").json()
    assert other["project"] == "MAIN" and other["key"] == f"MAIN-{other['number']}"


def test_a_project_the_caller_cannot_see_is_answered_as_an_unknown_one(member_client, web):
    hidden = member_client.post("/api/issues", {"title": "x", "project": "WEB"}, format="json")
    unknown = member_client.post("/api/issues", {"title": "x", "project": "NOPE"}, format="json")
    assert assert_json_error(hidden, 400) == {"project": ["Unknown project 'WEB'."]}
    assert assert_json_error(unknown, 400) == {"project": ["Unknown project 'NOPE'."]}
    assert not Issue.objects.exists()


def test_a_viewer_of_the_project_may_not_create_in_it(web):
    viewer = UserFactory(username="webviewer")
    add_member(viewer, web, "viewer")
    response = make_client(viewer).post("/api/issues", {"title": "x", "project": "WEB"}, format="json")
    assert_json_error(response, 403)
    assert not Issue.objects.exists()


def test_the_project_is_read_only_on_patch(web_member, web):
    issue = IssueFactory(project=web)
    response = make_client(web_member).patch(
        f"/api/issues/{issue.pk}", {"project": "MAIN", "version": 1}, format="json"
    )
    assert assert_json_error(response, 400) == {"project": ["This field is read-only."]}


def test_an_assignee_must_see_the_issues_project(web_member, web, member):
    client = make_client(web_member)
    outsider = UserFactory(username="outsider")  # no membership: sees MAIN (internal), not WEB (private)
    refused = client.post("/api/issues", {"title": "x", "project": "WEB", "assignee": outsider.pk}, format="json")
    assert "assignee" in assert_json_error(refused, 400)
    assert not Issue.objects.exists()
    issue = IssueFactory(project=web)
    patch = client.patch(f"/api/issues/{issue.pk}", {"assignee": outsider.pk, "version": 1}, format="json")
    assert "assignee" in assert_json_error(patch, 400)
    assert Issue.objects.get(pk=issue.pk).version == 1
    # In the internal default project anyone active may be assigned; staff may be assigned anywhere.
    ok = make_client(member).post("/api/issues", {"title": "y", "assignee": outsider.pk}, format="json")
    assert ok.status_code == 201, ok.content
    staffer = UserFactory(username="boss", is_staff=True)
    ok = client.post("/api/issues", {"title": "z", "project": "WEB", "assignee": staffer.pk}, format="json")
    assert ok.status_code == 201, ok.content


def test_the_project_filter_narrows_and_its_count_is_the_kept_one(web_member, web):
    IssueFactory.create_batch(3, project=web)
    IssueFactory.create_batch(2)  # MAIN
    client = make_client(web_member)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/api/issues", {"project": "web"}).json()
    assert body["count"] == 3 and {row["project"] for row in body["results"]} == {"WEB"}
    sql = [query["sql"] for query in ctx.captured_queries]
    assert any("issues_issuetally" in q for q in sql) and not any("COUNT(*)" in q for q in sql), sql
    assert client.get("/api/issues", {"project": "WEB,MAIN"}).json()["count"] == 5
    assert client.get("/api/issues").json()["count"] == 5
    # With another filter the count is COUNT(*) over the matches, still within the project.
    assert client.get("/api/issues", {"project": "WEB", "status": "open"}).json()["count"] == 3


def test_the_project_filter_refuses_unknown_and_invisible_keys_alike(member_client, web):
    IssueFactory(project=web, title="hidden")
    hidden = assert_json_error(member_client.get("/api/issues", {"project": "WEB"}), 400)
    unknown = assert_json_error(member_client.get("/api/issues", {"project": "ZZZ"}), 400)
    assert hidden == {"project": ["Unknown project 'WEB'."]}
    assert unknown == {"project": ["Unknown project 'ZZZ'."]}
    listed = member_client.get("/api/issues")
    assert listed.json()["count"] == 0 and b"hidden" not in listed.content


def test_the_label_filter_matches_names_in_every_visible_project(web_member, web):
    in_web = IssueFactory(project=web, labels=[LabelFactory(project=web, name="bug")])
    in_main = IssueFactory(labels=[LabelFactory(name="Bug")])
    body = make_client(web_member).get("/api/issues", {"label": "BUG"}).json()
    assert body["count"] == 2 and {row["id"] for row in body["results"]} == {in_web.pk, in_main.pk}


def test_staff_see_every_project(web):
    IssueFactory(project=web)
    IssueFactory()
    staffer = UserFactory(username="boss", is_staff=True)
    body = make_client(staffer).get("/api/issues").json()
    assert body["count"] == 2 and {row["project"] for row in body["results"]} == {"WEB", "MAIN"}


def test_a_project_made_private_disappears_for_non_members_at_once(member_client):
    issue = IssueFactory()
    assert member_client.get(f"/api/issues/{issue.pk}").status_code == 200
    main = default_project()
    outsider = make_client(UserFactory(username="outsider"))
    assert outsider.get(f"/api/issues/{issue.pk}").status_code == 200
    Project.objects.filter(pk=main.pk).update(visibility=Visibility.PRIVATE)
    assert_json_error(outsider.get(f"/api/issues/{issue.pk}"), 404)
    assert outsider.get("/api/issues").json()["count"] == 0
    assert member_client.get(f"/api/issues/{issue.pk}").status_code == 200  # still a member


def test_the_database_refuses_a_label_of_another_project(web):
    """Whatever writes the links (the admin's widget, a script), an issue carries labels of its own project only:
    the statement that would link another project's label fails whole (migration 0012's trigger)."""
    issue = IssueFactory(project=web)
    own, foreign = LabelFactory(project=web, name="ok"), LabelFactory(name="elsewhere")
    with pytest.raises(IntegrityError), transaction.atomic():
        issue.labels.add(own, foreign)  # one INSERT statement of two links
    assert not issue.labels.exists()
    issue.labels.add(own)
    assert list(issue.labels.values_list("name", flat=True)) == ["ok"]


def test_a_superuser_counts_as_staff(web):
    """Staff see every project and act as maintainers in each; a superuser without ``is_staff`` too."""
    IssueFactory(project=web)
    root = UserFactory(username="root", is_superuser=True, is_staff=False)
    client = make_client(root)
    assert client.get("/api/issues").json()["count"] == 1
    created = client.post("/api/issues", {"title": "by root", "project": "WEB"}, format="json")
    assert created.status_code == 201, created.content
