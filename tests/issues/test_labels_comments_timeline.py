"""PUT /issues/{id}/labels, comments, timeline, the labels collection and users."""

import pytest

from issues.models import Comment, Issue, IssueEvent, Label
from tests.factories import CommentFactory, IssueFactory, LabelFactory, UserFactory

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
    assert label == {"id": label["id"], "name": "ui", "color": "#1d76db", "issue_count": 0}
    assert response["Location"].endswith(f"/api/labels/{label['id']}")
    dup = maintainer_client.post("/api/labels", {"name": "BUG"}, format="json")
    assert dup.status_code == 400 and "name" in dup.json()
    listing = maintainer_client.get("/api/labels").json()["results"]
    assert {row["name"]: row["issue_count"] for row in listing} == {"bug": 1, "ui": 0}
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
