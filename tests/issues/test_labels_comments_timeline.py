"""PUT /issues/{id}/labels, comments, timeline, the labels collection and users."""

import pytest

from issues.models import Comment, Issue, IssueEvent, Label, Visibility
from tests.factories import (
    CommentFactory,
    IssueFactory,
    LabelFactory,
    ProjectFactory,
    UserFactory,
    add_member,
)
from tests.helpers import make_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body",
    [
        ["bug", "urgent"],
        [{"name": "bug"}, {"name": "urgent"}],
        {"labels": ["bug", "urgent"]},
        {"labels": ["bug", {"name": "urgent"}], "version": 1},
    ],
)
def test_replace_labels_accepts_every_body_shape(member_client, body):
    issue = IssueFactory(labels=[LabelFactory(name="old")])
    response = member_client.put(f"/api/issues/{issue.pk}/labels", body, format="json")
    assert response.status_code == 200, response.content
    assert sorted(response.json()["labels"]) == ["bug", "urgent"]
    assert response.json()["version"] == 2
    event = IssueEvent.objects.get(issue=issue)
    assert event.details == {"added": ["bug", "urgent"], "removed": ["old"]}


def test_replace_labels_with_same_set_keeps_version(member_client):
    issue = IssueFactory(labels=[LabelFactory(name="Bug")])
    response = member_client.put(f"/api/issues/{issue.pk}/labels", ["bug"], format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert response.json()["labels"] == ["Bug"]
    assert not IssueEvent.objects.filter(issue=issue).exists()


def test_replace_labels_stale_version_is_409(member_client):
    issue = IssueFactory()
    Issue.objects.filter(pk=issue.pk).update(version=2)
    response = member_client.put(f"/api/issues/{issue.pk}/labels", {"labels": ["x"], "version": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert not Label.objects.filter(name="x").exists()


@pytest.mark.parametrize("body", [[1], [{"nom": "x"}], "bug", {"labels": ["a;b"]}, {"labels": [], "extra": 1}])
def test_replace_labels_rejects_bad_bodies(member_client, body):
    issue = IssueFactory()
    response = member_client.put(f"/api/issues/{issue.pk}/labels", body, format="json")
    assert response.status_code == 400
    assert Issue.objects.get(pk=issue.pk).version == 1


def test_comment_create_and_list(member_client, member):
    issue = IssueFactory()
    response = member_client.post(f"/api/issues/{issue.pk}/comments", {"body": "  Seen too  "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["body"] == "Seen too"
    assert body["issue"] == issue.pk
    assert body["author"] == {"id": member.pk, "username": member.username}
    assert Issue.objects.get(pk=issue.pk).version == 1
    event = IssueEvent.objects.get(issue=issue)
    assert event.type == "commented"
    assert event.details == {"comment_id": body["id"], "excerpt": "Seen too"}
    listing = member_client.get(f"/api/issues/{issue.pk}/comments").json()
    assert listing["count"] == 1 and listing["results"][0]["id"] == body["id"]


@pytest.mark.parametrize("body", [{}, {"body": "   "}, {"body": "x" * 10_001}, {"body": "ok", "author": 1}])
def test_comment_rejects_bad_bodies(member_client, body):
    issue = IssueFactory()
    assert member_client.post(f"/api/issues/{issue.pk}/comments", body, format="json").status_code == 400
    assert not Comment.objects.exists()
    assert not IssueEvent.objects.exists()


def test_comment_on_missing_issue_is_404(member_client):
    assert member_client.post("/api/issues/424242/comments", {"body": "x"}, format="json").status_code == 404
    assert member_client.get("/api/issues/424242/comments").status_code == 404
    assert member_client.get("/api/issues/424242/timeline").status_code == 404


def test_timeline_oldest_first_with_actor(member_client, member):
    issue = member_client.post("/api/issues", {"title": "t"}, format="json").json()
    member_client.patch(f"/api/issues/{issue['id']}", {"status": "resolved", "version": 1}, format="json")
    member_client.post(f"/api/issues/{issue['id']}/comments", {"body": "done"}, format="json")
    body = member_client.get(f"/api/issues/{issue['id']}/timeline").json()
    assert [e["type"] for e in body["results"]] == ["created", "status_changed", "commented"]
    assert body["results"][1]["details"] == {"from": "open", "to": "resolved"}
    assert body["results"][0]["actor"] == {"id": member.pk, "username": member.username}
    assert body["results"][0]["source"] == "api"


def test_label_collection(maintainer_client):
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    response = maintainer_client.post("/api/labels", {"name": " ui ", "color": "#1d76db"}, format="json")
    assert response.status_code == 201
    label = response.json()
    assert label == {"id": label["id"], "project": "MAIN", "name": "ui", "color": "#1d76db", "issue_count": 0}
    assert response["Location"].endswith(f"/api/labels/{label['id']}")
    dup = maintainer_client.post("/api/labels", {"name": "BUG"}, format="json")
    assert dup.status_code == 400 and "name" in dup.json()
    listing = maintainer_client.get("/api/labels").json()["results"]
    assert {row["name"]: row["issue_count"] for row in listing} == {"bug": 1, "ui": 0}
    assert maintainer_client.get(f"/api/labels/{label['id']}").json() == label
    renamed = maintainer_client.patch(f"/api/labels/{label['id']}", {"name": "frontend"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "frontend"
    assert maintainer_client.patch(f"/api/labels/{label['id']}", {"name": "Bug"}, format="json").status_code == 400
    bug = Label.objects.get(name="bug")
    assert maintainer_client.delete(f"/api/labels/{bug.pk}").status_code == 204
    issue.refresh_from_db()
    assert issue.version == 2
    assert list(issue.labels.all()) == []
    event = IssueEvent.objects.get(issue=issue)
    assert (event.type, event.details) == ("labels_changed", {"added": [], "removed": ["bug"]})


@pytest.mark.parametrize("name", ["", "a,b", "a;b", "x" * 51, "nul\x00"])
def test_label_name_rules(maintainer_client, name):
    assert maintainer_client.post("/api/labels", {"name": name}, format="json").status_code == 400
    assert not Label.objects.exists()


# --- labels per project -------------------------------------------------------------------------------------


@pytest.fixture
def web_and_secret(db):
    """WEB (private) and SECRET (private), each with a label ``bug`` carried by one issue; ``webmaster`` maintains
    WEB, is a viewer of MAIN (internal: every user sees it) and no member of SECRET."""
    web = ProjectFactory(key="WEB")
    secret = ProjectFactory(key="SECRET", visibility=Visibility.PRIVATE)
    webmaster = UserFactory(username="webmaster", role="viewer")
    add_member(webmaster, web, "maintainer")
    labels = {}
    for project in (web, secret):
        labels[project.key] = LabelFactory(project=project, name="bug")
        IssueFactory(project=project, labels=[labels[project.key]])
    labels["MAIN"] = LabelFactory(name="main-only")
    return {"web": web, "secret": secret, "webmaster": webmaster, "client": make_client(webmaster), "labels": labels}


def test_the_same_name_is_allowed_in_two_projects_but_not_twice_in_one(staff_client):
    ProjectFactory(key="WEB")
    main = staff_client.post("/api/labels", {"name": "Bug"}, format="json")
    web = staff_client.post("/api/labels", {"name": "bug", "project": "web"}, format="json")
    assert (main.status_code, web.status_code) == (201, 201), (main.content, web.content)
    assert (main.json()["project"], web.json()["project"]) == ("MAIN", "WEB")
    again = staff_client.post("/api/labels", {"name": "BUG", "project": "WEB"}, format="json")
    assert again.status_code == 400
    assert again.json() == {"name": ["A label with this name already exists in this project."]}
    renamed = staff_client.patch(f"/api/labels/{main.json()['id']}", {"name": "BUG"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["project"] == "MAIN"
    listing = staff_client.get("/api/labels").json()["results"]
    assert sorted((row["project"], row["name"]) for row in listing) == [("MAIN", "BUG"), ("WEB", "bug")]


def test_the_label_filter_matches_the_name_in_every_visible_project(web_and_secret, staff_client):
    main_issue = IssueFactory(labels=[LabelFactory(name="BUG")])
    client = web_and_secret["client"]
    found = client.get("/api/issues", {"label": "bug"}).json()
    assert sorted(issue["project"] for issue in found["results"]) == ["MAIN", "WEB"]
    assert found["count"] == 2
    assert {issue["id"] for issue in found["results"]} >= {main_issue.pk}
    assert staff_client.get("/api/issues", {"label": "Bug"}).json()["count"] == 3
    narrowed = client.get("/api/issues", {"label": "bug", "project": "WEB"}).json()["results"]
    assert [issue["project"] for issue in narrowed] == ["WEB"]


def test_the_list_shows_only_visible_projects_and_narrows_by_project(web_and_secret):
    client = web_and_secret["client"]
    rows = client.get("/api/labels").json()["results"]
    assert sorted((row["project"], row["name"], row["issue_count"]) for row in rows) == [
        ("MAIN", "main-only", 0),
        ("WEB", "bug", 1),
    ]
    web = client.get("/api/labels", {"project": "web"}).json()
    assert (web["count"], [row["project"] for row in web["results"]]) == (1, ["WEB"])
    both = client.get("/api/labels?project=WEB&project=MAIN").json()
    assert both["count"] == 2
    assert client.get("/api/labels", {"project": ""}).json()["count"] == 2


@pytest.mark.parametrize("value", ["SECRET", "NOSUCH", "WEB,SECRET"])
def test_an_invisible_project_in_the_list_filter_is_an_unknown_one(web_and_secret, value):
    response = web_and_secret["client"].get("/api/labels", {"project": value})
    assert response.status_code == 400
    unknown = value.split(",")[-1]
    assert response.json() == {"project": [f"Unknown project '{unknown}'."]}


@pytest.mark.parametrize("value", ["X" * 11, "WEB\x00", ",".join(f"P{n}" for n in range(101))])
def test_a_malformed_project_filter_is_a_400_naming_it(web_and_secret, staff_client, value):
    for client in (web_and_secret["client"], staff_client):  # staff look keys up in the database
        response = client.get("/api/labels", {"project": value})
        assert response.status_code == 400
        assert list(response.json()) == ["project"]


def test_a_label_of_an_invisible_project_is_a_404_for_every_method(web_and_secret):
    client = web_and_secret["client"]
    secret = web_and_secret["labels"]["SECRET"]
    missing = client.get("/api/labels/999999")
    for response in (
        client.get(f"/api/labels/{secret.pk}"),
        client.patch(f"/api/labels/{secret.pk}", {"name": "x"}, format="json"),
        client.delete(f"/api/labels/{secret.pk}"),
    ):
        assert response.status_code == 404
        assert response.json() == missing.json()
    assert Label.objects.get(pk=secret.pk).name == "bug"


def test_creating_a_label_needs_the_maintainer_role_in_its_project(web_and_secret):
    client = web_and_secret["client"]
    created = client.post("/api/labels", {"name": "ui", "project": "web", "color": "#00ff00"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["project"] == "WEB"
    assert Label.objects.get(pk=created.json()["id"]).project == web_and_secret["web"]
    # A viewer of MAIN (the default project, used when ``project`` is omitted) may not.
    assert client.post("/api/labels", {"name": "ui"}, format="json").status_code == 403
    assert client.post("/api/labels", {"name": "ui", "project": "MAIN"}, format="json").status_code == 403
    invisible = client.post("/api/labels", {"name": "ui", "project": "SECRET"}, format="json")
    unknown = client.post("/api/labels", {"name": "ui", "project": "NOSUCH"}, format="json")
    assert invisible.status_code == unknown.status_code == 400
    assert invisible.json() == {"project": ["Unknown project 'SECRET'."]}
    assert unknown.json() == {"project": ["Unknown project 'NOSUCH'."]}
    assert not Label.objects.filter(name="ui").exclude(project=web_and_secret["web"]).exists()


def test_renaming_and_deleting_need_the_maintainer_role_in_the_labels_project(web_and_secret):
    client = web_and_secret["client"]
    main_label, web_label = web_and_secret["labels"]["MAIN"], web_and_secret["labels"]["WEB"]
    assert client.get(f"/api/labels/{main_label.pk}").status_code == 200  # a viewer reads
    assert client.patch(f"/api/labels/{main_label.pk}", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"/api/labels/{main_label.pk}").status_code == 403
    assert Label.objects.get(pk=main_label.pk).name == "main-only"
    renamed = client.patch(f"/api/labels/{web_label.pk}", {"name": "defect"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json() == {
        "id": web_label.pk,
        "project": "WEB",
        "name": "defect",
        "color": "#cccccc",
        "issue_count": 1,
    }
    moved = client.patch(f"/api/labels/{web_label.pk}", {"project": "MAIN"}, format="json")
    assert (moved.status_code, moved.json()) == (400, {"project": ["This field is read-only."]})
    assert client.delete(f"/api/labels/{web_label.pk}").status_code == 204
    assert not Label.objects.filter(pk=web_label.pk).exists()


def test_members_and_viewers_may_not_manage_labels_anywhere(member_client, viewer_client):
    label = LabelFactory(name="bug")
    for client in (member_client, viewer_client):
        assert client.get(f"/api/labels/{label.pk}").status_code == 200
        assert client.post("/api/labels", {"name": "new"}, format="json").status_code == 403
        assert client.patch(f"/api/labels/{label.pk}", {"name": "x"}, format="json").status_code == 403
        assert client.delete(f"/api/labels/{label.pk}").status_code == 403
    assert list(Label.objects.values_list("name", flat=True)) == ["bug"]


def test_staff_manage_the_labels_of_every_project(web_and_secret, staff_client):
    secret = web_and_secret["labels"]["SECRET"]
    assert staff_client.get(f"/api/labels/{secret.pk}").json()["project"] == "SECRET"
    created = staff_client.post("/api/labels", {"name": "ops", "project": "secret"}, format="json")
    assert (created.status_code, created.json()["project"]) == (201, "SECRET")
    assert staff_client.patch(f"/api/labels/{secret.pk}", {"color": "#123456"}, format="json").status_code == 200
    assert staff_client.delete(f"/api/labels/{secret.pk}").status_code == 204


def test_users_listing_and_search(viewer_client):
    UserFactory(username="alice", first_name="Alice", last_name="Liddell")
    UserFactory(username="bob", first_name="Bob", last_name="Builder")
    body = viewer_client.get("/api/users", {"search": "lidd"}).json()
    assert body["results"] == [{"id": body["results"][0]["id"], "username": "alice", "full_name": "Alice Liddell"}]
    assert viewer_client.get("/api/users").json()["count"] == 3  # alice, bob and the viewer


def test_existing_labels_still_render(member_client):
    issue = IssueFactory(labels=[LabelFactory(name="x y")])
    assert member_client.get(f"/api/issues/{issue.pk}").json()["labels"] == ["x y"]


def test_comment_count_on_detail_matches_comments(member_client):
    issue = IssueFactory()
    CommentFactory.create_batch(2, issue=issue)
    CommentFactory(issue=IssueFactory())
    assert member_client.get(f"/api/issues/{issue.pk}").json()["comment_count"] == 2
