"""Issues: create, list with filters and ordering, detail with ETag, version-checked PATCH; input the API refuses
(always a 4xx JSON answer naming what is wrong, never a 500, never a write)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from issues.models import Issue, IssueEvent, Label
from tests.factories import CommentFactory, IssueFactory, LabelFactory, UserFactory
from tests.helpers import assert_json_error, assert_no_writes

pytestmark = pytest.mark.django_db

BIG = 2**63


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
    alice, bob, carol = UserFactory(username="alice"), UserFactory(username="bob"), UserFactory(username="carol")
    bug, ui = LabelFactory(name="bug"), LabelFactory(name="ui")
    old = timezone.now() - timedelta(days=10)
    a = IssueFactory(
        title="Crash on save", status="open", priority="high", assignee=alice, labels=[bug, ui], reporter=carol
    )
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


def test_stale_if_match_with_an_empty_form_version_is_412(member_client):
    """The version came from If-Match (the form's ``version`` field is empty): a stale one is a 412, not a 409."""
    issue = IssueFactory()
    Issue.objects.filter(pk=issue.pk).update(version=5)
    response = member_client.patch(
        f"/api/issues/{issue.pk}",
        "title=b&version=",
        content_type="application/x-www-form-urlencoded",
        HTTP_IF_MATCH='"4"',
    )
    assert response.status_code == 412
    assert response.json()["current_version"] == 5


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


# --- input the API refuses: a 4xx JSON answer naming the field, and nothing written -----------------------------


def test_nul_byte_in_title(member_client):
    body = assert_json_error(member_client.post("/api/issues", {"title": "a\x00b"}, format="json"), 400)
    assert "title" in body
    assert_no_writes()


def test_nul_byte_in_description_comment_and_label(member_client):
    issue = IssueFactory()
    patch = member_client.patch(f"/api/issues/{issue.pk}", {"description": "\x00", "version": 1}, format="json")
    assert "description" in assert_json_error(patch, 400)
    comment = member_client.post(f"/api/issues/{issue.pk}/comments", {"body": "x\x00"}, format="json")
    assert "body" in assert_json_error(comment, 400)
    labels = member_client.put(f"/api/issues/{issue.pk}/labels", ["a\x00"], format="json")
    assert_json_error(labels, 400)
    assert_no_writes(issue)
    assert Label.objects.count() == 0


def test_lone_surrogate_in_title_is_400(member_client):
    raw = '{"title": "bad \\ud800 text"}'
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert "title" in assert_json_error(response, 400)
    assert_no_writes()


@pytest.mark.parametrize("body", [{"title": 1}, {"title": 1.5}, {"title": True}, {"title": ["x"]}])
def test_text_fields_take_only_strings(member_client, body):
    assert member_client.post("/api/issues", body, format="json").status_code == 400


def test_infinite_number_is_not_a_title(member_client):
    raw = '{"title": 1e999999}'
    assert member_client.generic("POST", "/api/issues", raw, content_type="application/json").status_code == 400


def test_huge_number_is_400(member_client):
    raw = '{"title": "x", "assignee": ' + "9" * 5000 + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_error(response, 400)
    assert_no_writes()


@pytest.mark.parametrize("assignee", [BIG, -1, "abc", 1.5, True, [1], {"id": 1}])
def test_bad_assignee_is_400(member_client, assignee):
    response = member_client.post("/api/issues", {"title": "x", "assignee": assignee}, format="json")
    assert "assignee" in assert_json_error(response, 400)
    assert_no_writes()


@pytest.mark.parametrize("digits", ["²", "١", "٣٤"])
def test_non_ascii_digits_are_rejected(member_client, digits):
    issue = IssueFactory()
    create = member_client.post("/api/issues", {"title": "x", "assignee": digits}, format="json")
    assert create.status_code == 400
    assert "assignee" in create.json()
    assert member_client.get("/api/issues", {"assignee": digits}).status_code == 400
    patch = member_client.patch(f"/api/issues/{issue.pk}", {"title": "y"}, format="json", HTTP_IF_MATCH=f'"{digits}"')
    assert patch.status_code == 400
    assert member_client.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH=f'"{digits}"').status_code == 200


@pytest.mark.parametrize("field", ["id", "version", "reporter", "created_at", "updated_at", "resolved_at"])
def test_read_only_field_on_create_is_400_naming_it(member_client, field):
    response = member_client.post("/api/issues", {"title": "x", field: 1}, format="json")
    body = assert_json_error(response, 400)
    assert body[field] == ["This field is read-only."]
    assert_no_writes()


def test_unknown_field_is_400_naming_it(member_client):
    issue = IssueFactory()
    create = member_client.post("/api/issues", {"title": "x", "colour": "red"}, format="json")
    assert assert_json_error(create, 400) == {"colour": ["Unknown field."]}
    patch = member_client.patch(f"/api/issues/{issue.pk}", {"severity": 1, "version": 1}, format="json")
    assert assert_json_error(patch, 400) == {"severity": ["Unknown field."]}
    patch_ro = member_client.patch(f"/api/issues/{issue.pk}", {"reporter": 3, "version": 1}, format="json")
    assert assert_json_error(patch_ro, 400) == {"reporter": ["This field is read-only."]}
    assert_no_writes(issue)


@pytest.mark.parametrize("version", ["abc", -1, 0, BIG, None, 1.5, True, [], {}, "1"])
def test_bad_versions(member_client, version):
    issue = IssueFactory()
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "new", "version": version}, format="json")
    if version == "1":  # a numeric string is a valid integer for JSON clients that quote numbers
        assert response.status_code == 200
        return
    body = assert_json_error(response, 400)
    assert "version" in body
    assert_no_writes(issue)


@pytest.mark.parametrize("if_match", ["abc", '"-1"', '"99999999999999999999"', "", '"1.5"'])
def test_bad_if_match_is_400(member_client, if_match):
    issue = IssueFactory()
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "new"}, format="json", HTTP_IF_MATCH=if_match)
    assert "version" in assert_json_error(response, 400)
    assert_no_writes(issue)


def test_if_none_match_list(member_client):
    issue = IssueFactory()
    assert member_client.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH='"7", "1"').status_code == 304
    assert member_client.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH='"7", "8"').status_code == 200


@pytest.mark.parametrize(
    "param", ["q", "status", "label", "assignee", "ordering", "created_after", "page", "page_size"]
)
def test_nul_byte_in_query_parameter(member_client, param):
    response = member_client.get("/api/issues", {param: "a\x00b"})
    if param == "page_size":  # a bad page_size is clamped, by contract
        assert response.status_code == 200
    else:
        assert_json_error(response)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+05:00"])
@pytest.mark.parametrize("param", ["created_after", "created_before", "updated_after"])
def test_date_times_outside_utc_are_400(member_client, value, param):
    response = member_client.get("/api/issues", {param: value})
    assert response.status_code == 400
    assert param in response.json()
    export = member_client.get("/api/issues/export", {param: value})
    assert export.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        f"/api/issues/{BIG}",
        f"/api/issues/{BIG}/comments",
        f"/api/issues/{BIG}/timeline",
        f"/api/labels/{BIG}",
        f"/api/users/{BIG}",
        "/api/issues/99999999999999999999999999",
        "/api/issues/0",
    ],
)
def test_huge_ids_in_path_are_404(member_client, path):
    body = assert_json_error(member_client.get(path), 404)
    assert body["code"] == "not_found"


def test_huge_id_in_patch_path_is_404(member_client):
    response = member_client.patch(f"/api/issues/{BIG}", {"title": "x", "version": 1}, format="json")
    assert_json_error(response, 404)


def test_post_without_trailing_slash_is_not_redirected(member_client):
    without = member_client.post("/api/issues", {"title": "a"}, format="json")
    with_slash = member_client.post("/api/issues/", {"title": "b"}, format="json")
    assert without.status_code == 201 and with_slash.status_code == 201
    issue_id = without.json()["id"]
    for path in (f"/api/issues/{issue_id}", f"/api/issues/{issue_id}/"):
        assert member_client.get(path).status_code == 200
    for path in ("/api/issues/{}/comments", "/api/issues/{}/comments/"):
        response = member_client.post(path.format(issue_id), {"body": "hi"}, format="json")
        assert response.status_code == 201
    assert Issue.objects.count() == 2
