"""Regressions found by a contract review: each input here once gave a 5xx, an HTML error or a wrong record."""

import pytest

from issues.models import Comment, IssueEvent, Label
from tests.factories import IssueFactory, LabelFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/health", "/api/issues", "/api/users", "/api/issues/export"])
def test_too_many_query_parameters_is_a_json_400(member_client, path):
    query = "&".join(f"p{i}=1" for i in range(1100))
    response = member_client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_too_many_form_fields_is_a_json_400(member_client):
    body = "&".join(f"f{i}=1" for i in range(1100))
    response = member_client.generic("POST", "/api/issues", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


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


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+05:00"])
@pytest.mark.parametrize("param", ["created_after", "created_before", "updated_after"])
def test_date_times_outside_utc_are_400(member_client, value, param):
    response = member_client.get("/api/issues", {param: value})
    assert response.status_code == 400
    assert param in response.json()
    export = member_client.get("/api/issues/export", {param: value})
    assert export.status_code == 400


@pytest.mark.parametrize("body", [{"title": 1}, {"title": 1.5}, {"title": True}, {"title": ["x"]}])
def test_text_fields_take_only_strings(member_client, body):
    assert member_client.post("/api/issues", body, format="json").status_code == 400


def test_infinite_number_is_not_a_title(member_client):
    raw = '{"title": 1e999999}'
    assert member_client.generic("POST", "/api/issues", raw, content_type="application/json").status_code == 400


def test_if_none_match_list(member_client):
    issue = IssueFactory()
    assert member_client.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH='"7", "1"').status_code == 304
    assert member_client.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH='"7", "8"').status_code == 200


@pytest.mark.parametrize("path", ["/api/", "/api/health"])
def test_head_on_public_routes(anon_client, path):
    assert anon_client.head(path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/api/docs", {}, 405),
        ("post", "/api/schema", {}, 405),
        ("get", "/api/docs", {"HTTP_ACCEPT": "application/json"}, 406),
        ("get", "/api/docs?format=json", {}, 404),
    ],
)
def test_schema_and_docs_errors_are_json(anon_client, method, path, headers, status):
    response = getattr(anon_client, method)(path, **headers)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_admin_refuses_label_names_with_separators(client, staff):
    client.force_login(staff)
    response = client.post("/admin/issues/label/add/", {"name": "a,b", "color": "#cccccc"})
    assert response.status_code == 200  # the form comes back with the error
    assert not Label.objects.exists()


def test_admin_comment_event_has_source_admin_and_comments_cannot_be_deleted(client, staff):
    client.force_login(staff)
    issue = IssueFactory()
    response = client.post("/admin/issues/comment/add/", {"issue": issue.pk, "body": "from the admin"})
    assert response.status_code == 302
    event = IssueEvent.objects.get(issue=issue)
    assert (event.type, event.source) == ("commented", "admin")
    comment = Comment.objects.get()
    assert client.post(f"/admin/issues/comment/{comment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Comment.objects.filter(pk=comment.pk).exists()


def test_existing_labels_still_render(member_client):
    issue = IssueFactory(labels=[LabelFactory(name="x y")])
    assert member_client.get(f"/api/issues/{issue.pk}").json()["labels"] == ["x y"]
