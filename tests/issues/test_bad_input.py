"""Bad input: always a 4xx JSON answer, never a 500, never a write."""

import json

import pytest
from django.test import override_settings

from issues.models import Comment, Issue, IssueEvent, Label
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db

BIG = 2**63


def assert_no_writes(issue: Issue | None = None) -> None:
    if issue is None:
        assert Issue.objects.count() == 0
    else:
        fresh = Issue.objects.get(pk=issue.pk)
        assert (fresh.version, fresh.title, fresh.status) == (issue.version, issue.title, issue.status)
    assert IssueEvent.objects.count() == 0
    assert Comment.objects.count() == 0


def assert_json_4xx(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_nul_byte_in_title(member_client):
    body = assert_json_4xx(member_client.post("/api/issues", {"title": "a\x00b"}, format="json"), 400)
    assert "title" in body
    assert_no_writes()


def test_nul_byte_in_description_comment_and_label(member_client):
    issue = IssueFactory()
    patch = member_client.patch(f"/api/issues/{issue.pk}", {"description": "\x00", "version": 1}, format="json")
    assert "description" in assert_json_4xx(patch, 400)
    comment = member_client.post(f"/api/issues/{issue.pk}/comments", {"body": "x\x00"}, format="json")
    assert "body" in assert_json_4xx(comment, 400)
    labels = member_client.put(f"/api/issues/{issue.pk}/labels", ["a\x00"], format="json")
    assert_json_4xx(labels, 400)
    assert_no_writes(issue)
    assert Label.objects.count() == 0


def test_lone_surrogate_in_title_is_400(member_client):
    raw = '{"title": "bad \\ud800 text"}'
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert "title" in assert_json_4xx(response, 400)
    assert_no_writes()


@pytest.mark.parametrize(
    "param", ["q", "status", "label", "assignee", "ordering", "created_after", "page", "page_size"]
)
def test_nul_byte_in_query_parameter(member_client, param):
    response = member_client.get("/api/issues", {param: "a\x00b"})
    if param == "page_size":  # a bad page_size is clamped, by contract
        assert response.status_code == 200
    else:
        assert_json_4xx(response)


@pytest.mark.parametrize("path", ["/api/issues", "/api/issues/export"])
@pytest.mark.parametrize(
    ("param", "values", "cap"),
    [
        ("label", [f"l{n}" for n in range(21)], 20),
        ("label", [",".join(f"l{n}" for n in range(1000))], 20),
        ("status", ["open,closed", "resolved", "in_progress", "done"], 4),
        ("priority", [f"p{n}" for n in range(1000)], 4),
    ],
)
def test_too_many_filter_values_is_400_naming_the_parameter(viewer_client, path, param, values, cap):
    response = viewer_client.get(path, {param: values})
    body = assert_json_4xx(response, 400)
    assert body == {param: [f"At most {cap} values are allowed."]}


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
    body = assert_json_4xx(member_client.get(path), 404)
    assert body["code"] == "not_found"


def test_huge_id_in_patch_path_is_404(member_client):
    response = member_client.patch(f"/api/issues/{BIG}", {"title": "x", "version": 1}, format="json")
    assert_json_4xx(response, 404)


@pytest.mark.parametrize("version", ["abc", -1, 0, BIG, None, 1.5, True, [], {}, "1"])
def test_bad_versions(member_client, version):
    issue = IssueFactory()
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "new", "version": version}, format="json")
    if version == "1":  # a numeric string is a valid integer for JSON clients that quote numbers
        assert response.status_code == 200
        return
    body = assert_json_4xx(response, 400)
    assert "version" in body
    assert_no_writes(issue)


@pytest.mark.parametrize("if_match", ["abc", '"-1"', '"99999999999999999999"', "", '"1.5"'])
def test_bad_if_match_is_400(member_client, if_match):
    issue = IssueFactory()
    response = member_client.patch(f"/api/issues/{issue.pk}", {"title": "new"}, format="json", HTTP_IF_MATCH=if_match)
    assert "version" in assert_json_4xx(response, 400)
    assert_no_writes(issue)


@pytest.mark.parametrize("assignee", [BIG, -1, "abc", 1.5, True, [1], {"id": 1}])
def test_bad_assignee_is_400(member_client, assignee):
    response = member_client.post("/api/issues", {"title": "x", "assignee": assignee}, format="json")
    assert "assignee" in assert_json_4xx(response, 400)
    assert_no_writes()


def test_huge_number_is_400(member_client):
    raw = '{"title": "x", "assignee": ' + "9" * 5000 + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_4xx(response, 400)
    assert_no_writes()


@pytest.mark.parametrize("field", ["id", "version", "reporter", "created_at", "updated_at", "resolved_at"])
def test_read_only_field_on_create_is_400_naming_it(member_client, field):
    response = member_client.post("/api/issues", {"title": "x", field: 1}, format="json")
    body = assert_json_4xx(response, 400)
    assert body[field] == ["This field is read-only."]
    assert_no_writes()


def test_unknown_field_is_400_naming_it(member_client):
    issue = IssueFactory()
    create = member_client.post("/api/issues", {"title": "x", "colour": "red"}, format="json")
    assert assert_json_4xx(create, 400) == {"colour": ["Unknown field."]}
    patch = member_client.patch(f"/api/issues/{issue.pk}", {"severity": 1, "version": 1}, format="json")
    assert assert_json_4xx(patch, 400) == {"severity": ["Unknown field."]}
    patch_ro = member_client.patch(f"/api/issues/{issue.pk}", {"reporter": 3, "version": 1}, format="json")
    assert assert_json_4xx(patch_ro, 400) == {"reporter": ["This field is read-only."]}
    assert_no_writes(issue)


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deeply_nested_json_is_400(member_client, depth):
    raw = '{"title": ' + "[" * depth + "]" * depth + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_4xx(response, 400)
    assert_no_writes()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"title": NaN}', b"\xff\xfe", b"", b"[]", b'"title"', b"null"],
)
def test_malformed_json_is_400(member_client, raw):
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_4xx(response, 400)
    assert_no_writes()


def test_wrong_content_type_is_415(member_client):
    response = member_client.generic("POST", "/api/issues", "title=x", content_type="text/plain")
    assert assert_json_4xx(response, 415)["code"] == "unsupported_media_type"
    assert_no_writes()


@override_settings(API_MAX_BODY_BYTES=1000)
def test_body_over_limit_is_413(member_client):
    raw = json.dumps({"title": "x", "description": "y" * 2000})
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    body = assert_json_4xx(response, 413)
    assert body["code"] == "request_too_large"
    assert_no_writes()


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


@pytest.mark.parametrize("path", ["/api/nope", "/api/issues/abc", "/api/issues/1/nope", "/api/reports/nope/x"])
def test_unknown_api_path_is_json_404(member_client, path):
    body = assert_json_4xx(member_client.get(path), 404)
    assert body == {"detail": "Not found.", "code": "not_found"}


def test_unknown_api_path_is_json_404_with_debug_on(member_client, settings):
    settings.DEBUG = True
    assert_json_4xx(member_client.post("/api/nope", {}, format="json"), 404)


def test_server_error_under_api_is_json(member_client, monkeypatch):
    from issues import selectors

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "issue_detail", boom)
    member_client.raise_request_exception = False
    response = member_client.get("/api/issues/1")
    assert response.status_code == 500
    assert response.json() == {"detail": "A server error occurred.", "code": "server_error"}


@pytest.mark.parametrize(("depth", "parsed"), [(32, True), (33, False)])
def test_json_nesting_limit_is_exactly_32_levels(member_client, depth, parsed):
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # the outer object is level 1
    raw = '{"title": "deep", "labels": ' + nested + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert response.status_code == 400
    if parsed:  # the body parsed; nested lists are just not label names
        assert "labels" in response.json()
    else:
        assert "nesting deeper than 32" in response.json()["detail"]
    assert_no_writes()
