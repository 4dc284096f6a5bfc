"""Issues: create, list with filters and ordering, detail with ETag, version-checked PATCH."""

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.models import Issue, IssueEvent, Label
from tests.factories import CommentFactory, IssueFactory, LabelFactory, UserFactory

pytestmark = pytest.mark.django_db


def create(client, **body):
    response = client.post("/api/issues", body, format="json")
    assert response.status_code == 201, response.content
    return response


def test_create_returns_201_location_etag_and_records_created_event(member_client, member):
    response = create(member_client, title="  Login fails  ", labels=["bug", "UI"], priority="high")
    body = response.json()
    assert body["title"] == "Login fails"
    assert body["reporter"] == member.pk
    assert body["version"] == 1
    assert body["status"] == "open" and body["resolved_at"] is None
    assert sorted(body["labels"]) == ["UI", "bug"]
    assert response["Location"].endswith(f"/api/issues/{body['id']}")
    assert response["ETag"] == '"1"'
    events = list(IssueEvent.objects.filter(issue_id=body["id"]).values_list("type", "source", "actor_id"))
    assert events == [("created", "api", member.pk)]


def test_create_reuses_labels_ignoring_case(member_client):
    LabelFactory(name="Bug")
    body = create(member_client, title="x", labels=["bug", "BUG"]).json()
    assert body["labels"] == ["Bug"]
    assert Label.objects.count() == 1


def test_create_resolved_sets_resolved_at(member_client):
    body = create(member_client, title="done already", status="closed").json()
    assert body["resolved_at"] == body["created_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"title": "x", "status": "done"}, "status"),
        ({"title": "x", "priority": "urgent"}, "priority"),
        ({"title": "x", "assignee": 999999}, "assignee"),
        ({"title": "x", "assignee": "abc"}, "assignee"),
        ({"title": "x", "labels": ["a,b"]}, "labels"),
        ({"title": "x", "labels": ["x" * 51]}, "labels"),
        ({"title": "x", "labels": "bug"}, "labels"),
    ],
)
def test_create_rejects_invalid_fields(member_client, body, field):
    response = member_client.post("/api/issues", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Issue.objects.count() == 0


def test_list_is_paginated_newest_first(member_client):
    now = timezone.now()
    ids = [IssueFactory(created_at=now - timedelta(minutes=i)).pk for i in range(25)]
    body = member_client.get("/api/issues").json()
    assert body["count"] == 25
    assert [row["id"] for row in body["results"]] == ids[:20]
    assert body["next"] is not None and body["previous"] is None
    page2 = member_client.get("/api/issues", {"page": 2}).json()
    assert [row["id"] for row in page2["results"]] == ids[20:]


def test_list_page_size_is_clamped_and_bad_page_is_json_404(member_client):
    IssueFactory.create_batch(3)
    assert len(member_client.get("/api/issues", {"page_size": 1000}).json()["results"]) == 3
    assert len(member_client.get("/api/issues", {"page_size": "abc"}).json()["results"]) == 3
    assert len(member_client.get("/api/issues", {"page_size": 2}).json()["results"]) == 2
    for page in ("0", "abc", "99"):
        response = member_client.get("/api/issues", {"page": page})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_list_filters(member_client):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    bug, ui = LabelFactory(name="bug"), LabelFactory(name="ui")
    old = timezone.now() - timedelta(days=10)
    a = IssueFactory(title="Crash on save", status="open", priority="high", assignee=alice, labels=[bug, ui])
    b = IssueFactory(title="Typo", description="crash log attached", status="closed", assignee=bob, labels=[bug])
    c = IssueFactory(title="Old one", status="in_progress", assignee=None, created_at=old, updated_at=old)

    def ids(**params):
        response = member_client.get("/api/issues", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(status="open") == {a.pk}
    assert ids(status="open,closed") == {a.pk, b.pk}
    assert ids(status=["open", "in_progress"]) == {a.pk, c.pk}
    assert ids(priority="high") == {a.pk}
    assert ids(assignee=alice.pk) == {a.pk}
    assert ids(assignee="none") == {c.pk}
    assert ids(reporter=a.reporter_id) == {a.pk}
    assert ids(label="bug") == {a.pk, b.pk}
    assert ids(label=["BUG", "ui"]) == {a.pk}
    assert ids(q="crash") == {a.pk, b.pk}
    since = (old + timedelta(days=1)).isoformat()
    assert ids(created_after=since) == {a.pk, b.pk}
    assert ids(created_before=since) == {c.pk}
    assert ids(updated_after=since) == {a.pk, b.pk}


def test_list_ordering(member_client):
    low = IssueFactory(priority="low")
    crit = IssueFactory(priority="critical")
    med = IssueFactory(priority="medium")

    def order(value):
        return [row["id"] for row in member_client.get("/api/issues", {"ordering": value}).json()["results"]]

    assert order("priority") == [low.pk, med.pk, crit.pk]
    assert order("-priority") == [crit.pk, med.pk, low.pk]
    assert order("id") == [low.pk, crit.pk, med.pk]
    assert order("-id") == [med.pk, crit.pk, low.pk]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "bogus"),
        ("priority", "urgent"),
        ("assignee", "abc"),
        ("assignee", "-3"),
        ("reporter", "x"),
        ("created_after", "yesterday"),
        ("updated_after", "2026-13-45"),
        ("ordering", "title"),
        ("q", "a\x00b"),
        ("label", "x" * 60),
    ],
)
def test_list_invalid_filter_is_400_naming_it(member_client, param, value):
    response = member_client.get("/api/issues", {param: value})
    assert response.status_code == 400
    assert param in response.json()


def test_detail_has_comments_count_and_etag(member_client):
    issue = IssueFactory()
    comments = CommentFactory.create_batch(3, issue=issue)
    response = member_client.get(f"/api/issues/{issue.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["comment_count"] == 3
    assert [c["id"] for c in body["comments"]] == [c.pk for c in comments]
    assert body["comments"][0]["author"]["username"] == comments[0].author.username
    assert response["ETag"] == '"1"'


def test_detail_lists_at_most_100_comments_oldest_first(member_client):
    issue = IssueFactory()
    CommentFactory.create_batch(105, issue=issue)
    body = member_client.get(f"/api/issues/{issue.pk}").json()
    assert body["comment_count"] == 105
    assert len(body["comments"]) == 100
    ids = [c["id"] for c in body["comments"]]
    assert ids == sorted(ids)


def test_detail_if_none_match(member_client):
    issue = IssueFactory()
    url = f"/api/issues/{issue.pk}"
    assert member_client.get(url, HTTP_IF_NONE_MATCH='"1"').status_code == 304
    assert member_client.get(url, HTTP_IF_NONE_MATCH='"2"').status_code == 200
    Issue.objects.filter(pk=issue.pk).update(version=2)
    assert member_client.get(url, HTTP_IF_NONE_MATCH='"1"').status_code == 200


def test_patch_with_body_version(member_client, member):
    issue = IssueFactory()
    response = member_client.patch(
        f"/api/issues/{issue.pk}", {"title": "New", "priority": "high", "version": 1}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response["ETag"] == '"2"'
    events = IssueEvent.objects.filter(issue=issue).order_by("id")
    assert [(e.type, e.details) for e in events] == [
        ("title_changed", {"from": issue.title, "to": "New"}),
        ("priority_changed", {"from": "medium", "to": "high"}),
    ]
    assert all(e.actor_id == member.pk and e.source == "api" for e in events)


def test_patch_with_if_match(member_client):
    issue = IssueFactory()
    response = member_client.patch(
        f"/api/issues/{issue.pk}", {"status": "in_progress"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2


def test_patch_without_version_is_400(member_client):
    issue = IssueFactory()
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "x"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"version": ["This field is required."]}
    assert Issue.objects.get(pk=issue.pk).title == issue.title


def test_stale_body_version_is_409_with_current(member_client):
    issue = IssueFactory()
    Issue.objects.filter(pk=issue.pk).update(version=3, title="Changed elsewhere")
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "Mine", "version": 2}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "version_conflict"
    assert body["current_version"] == 3
    assert body["current"]["title"] == "Changed elsewhere"
    assert "detail" in body
    assert Issue.objects.get(pk=issue.pk).title == "Changed elsewhere"
    assert not IssueEvent.objects.filter(issue=issue).exists()


def test_stale_if_match_is_412_with_current(member_client):
    issue = IssueFactory()
    Issue.objects.filter(pk=issue.pk).update(version=5)
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "Mine"}, format="json", HTTP_IF_MATCH='"4"')
    assert response.status_code == 412
    assert response.json()["current_version"] == 5
    assert response.json()["code"] == "version_conflict"


def test_patch_that_changes_nothing_keeps_version(member_client):
    issue = IssueFactory(title="Same")
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "Same", "version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert not IssueEvent.objects.filter(issue=issue).exists()


def test_patch_assignee_and_labels_record_events(member_client):
    issue = IssueFactory(labels=[LabelFactory(name="old")])
    user = UserFactory()
    response = member_client.patch(
        f"/api/issues/{issue.pk}",
        {"assignee": user.pk, "labels": ["new", "old"], "description": "more", "version": 1},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    details = {e.type: e.details for e in IssueEvent.objects.filter(issue=issue)}
    assert details == {
        "description_changed": {},
        "assignee_changed": {"from": None, "to": user.pk},
        "labels_changed": {"added": ["new"], "removed": []},
    }


def test_patch_unknown_issue_is_404(member_client):
    response = member_client.patch("/api/issues/999999", {"title": "x", "version": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_put_on_issue_is_405_json(member_client):
    issue = IssueFactory()
    response = member_client.put(f"/api/issues/{issue.pk}", {"title": "x"}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_delete_issue_is_not_offered(maintainer_client):
    issue = IssueFactory()
    assert maintainer_client.delete(f"/api/issues/{issue.pk}").status_code == 405
    assert Issue.objects.filter(pk=issue.pk).exists()


def test_keyset_pagination_walks_every_issue_once(member_client, django_assert_num_queries):
    now = timezone.now()
    same_instant = now - timedelta(hours=1)
    ids = [IssueFactory(created_at=now - timedelta(minutes=i)).pk for i in range(5)]
    ids += [IssueFactory(created_at=same_instant).pk for _ in range(4)]  # ties broken by id
    ids[5:] = sorted(ids[5:], reverse=True)
    seen, url = [], "/api/issues?pagination=keyset&page_size=2"
    while url:
        body = member_client.get(url).json()
        assert "count" not in body
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == ids
    with django_assert_num_queries(1 + 1):  # auth with permissions, then the page with label names: no COUNT
        member_client.get("/api/issues", {"pagination": "keyset", "status": "open"})


def test_keyset_pagination_rejects_bad_parameters(member_client):
    assert "pagination" in member_client.get("/api/issues", {"pagination": "offset"}).json()
    assert "ordering" in member_client.get("/api/issues", {"pagination": "keyset", "ordering": "id"}).json()
    assert member_client.get("/api/issues", {"pagination": "keyset", "cursor": "garbage"}).status_code == 404


# --- deactivated users cannot be made assignees (issue 11) ------------------------------------------------------


def test_create_with_a_deactivated_assignee_is_400_naming_it(member_client):
    gone = UserFactory(username="gone", is_active=False)
    response = member_client.post("/api/issues", {"title": "x", "assignee": gone.pk}, format="json")
    assert response.status_code == 400
    assert response.json() == {"assignee": [f"User {gone.pk} is deactivated and cannot be assigned."]}
    assert not Issue.objects.exists()
    active = UserFactory(username="here")
    response = member_client.post("/api/issues", {"title": "x", "assignee": active.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["assignee"] == active.pk


def test_patch_to_a_deactivated_assignee_is_400_and_changes_nothing(member_client):
    issue = IssueFactory()
    gone = UserFactory(username="gone", is_active=False)
    response = member_client.patch(
        f"/api/issues/{issue.pk}", {"assignee": gone.pk, "title": "New", "version": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"assignee": [f"User {gone.pk} is deactivated and cannot be assigned."]}
    after = Issue.objects.get(pk=issue.pk)
    assert (after.assignee_id, after.title, after.version) == (None, issue.title, 1)
    assert not IssueEvent.objects.filter(issue=issue).exists()


def test_patch_keeping_a_since_deactivated_assignee_is_accepted(member_client):
    """A client that sends back the state it read (the browsable API's form does) keeps a deactivated assignee:
    keeping is not assigning. Moving the issue to them from someone else is still refused."""
    gone = UserFactory(username="gone")
    issue = IssueFactory(assignee=gone)
    other = IssueFactory(assignee=UserFactory(username="other"))
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    response = member_client.patch(
        f"/api/issues/{issue.pk}", {"assignee": gone.pk, "title": "Renamed", "version": 1}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == gone.pk
    assert [e.type for e in IssueEvent.objects.filter(issue=issue)] == ["title_changed"]
    response = member_client.patch(f"/api/issues/{other.pk}", {"assignee": gone.pk, "version": 1}, format="json")
    assert response.status_code == 400
    assert "deactivated" in response.json()["assignee"][0]
    # and unassigning the deactivated user works as usual
    response = member_client.patch(f"/api/issues/{issue.pk}", {"assignee": None, "version": 2}, format="json")
    assert response.status_code == 200
    assert response.json()["assignee"] is None


def test_users_list_leaves_out_deactivated_users(member_client):
    """GET /api/users is for finding assignee ids: as GitHub's assignee picker hides suspended users, it lists
    only users who can be assigned."""
    here = UserFactory(username="here-user")
    gone = UserFactory(username="gone-user", is_active=False)
    names = {row["username"] for row in member_client.get("/api/users", {"page_size": 100}).json()["results"]}
    assert here.username in names
    assert gone.username not in names
    assert member_client.get("/api/users", {"search": "gone-user"}).json()["count"] == 0
