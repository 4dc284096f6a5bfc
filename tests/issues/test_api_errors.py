"""Errors under /api/ are JSON, never Django's HTML pages: unknown paths (also with CSRF checks and with DEBUG
on), bodies that do not parse, other media types, a server error, and the schema's and docs' own errors."""

import pytest
from django.test import Client

from issues.models import Issue
from tests.helpers import assert_json_error, assert_no_writes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope", "/api/issues/abc", "/api/issues/1/nope", "/api/reports/nope/x"])
def test_unknown_api_path_is_json_404(member_client, path):
    body = assert_json_error(member_client.get(path), 404)
    assert body == {"detail": "Not found.", "code": "not_found"}


def test_unknown_api_path_is_json_404_with_debug_on(member_client, settings):
    settings.DEBUG = True
    assert_json_error(member_client.post("/api/nope", {}, format="json"), 404)


def test_unsafe_method_on_unknown_api_path_is_json_404_even_with_csrf_checks() -> None:
    # PATCH /api/issues/%C2%84/ (a path no route matches) reached the catch-all view, which was not CSRF-exempt,
    # so Django's CSRF check answered with its HTML 403 page.
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "not-a-session"
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/issues/%C2%84/", data="{}", content_type="application/json")
        assert response.status_code == 404, method
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"title": NaN}', b"\xff\xfe", b"", b"[]", b'"title"', b"null"],
)
def test_malformed_json_is_400(member_client, raw):
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_error(response, 400)
    assert_no_writes()


def test_wrong_content_type_is_415(member_client):
    response = member_client.generic("POST", "/api/issues", "title=x", content_type="text/plain")
    assert assert_json_error(response, 415)["code"] == "unsupported_media_type"
    assert_no_writes()


def test_server_error_under_api_is_json(member_client, monkeypatch):
    from issues import selectors

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "issue_detail", boom)
    member_client.raise_request_exception = False
    response = member_client.get("/api/issues/1")
    assert response.status_code == 500
    assert response.json() == {"detail": "A server error occurred.", "code": "server_error"}


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


def test_plain_http_api_is_a_json_403_never_a_redirect(member_client, settings):
    """With the https redirect on, a write to /api/ over plain http would be redirected and replayed as a GET (a
    lost write): /api/ answers a JSON 403 instead, /api/health still answers for load balancers, and the admin is
    still redirected."""
    settings.SECURE_SSL_REDIRECT = True
    response = member_client.post("/api/issues", {"title": "lost?"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "https_required"
    assert not Issue.objects.exists()
    assert member_client.get("/api/issues").status_code == 403
    assert member_client.get("/api/health").status_code == 200
    assert member_client.get("/api/issues", secure=True).status_code == 200
    assert member_client.get("/admin/login/").status_code == 301


def test_a_host_not_allowed_is_a_json_400_also_with_debug_on(member_client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = True
    response = member_client.get("/api/issues", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "bad_request"
