"""Bugs the schema fuzzer found, each pinned by a test."""

from django.test import Client


def test_unsafe_method_on_unknown_api_path_is_json_404_even_with_csrf_checks(db) -> None:
    # Found by schemathesis: PATCH /api/issues/%C2%84/ (a path no route matches) reached the catch-all
    # view, which was not CSRF-exempt, so Django's CSRF check answered with its HTML 403 page.
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "not-a-session"
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/issues/%C2%84/", data="{}", content_type="application/json")
        assert response.status_code == 404, method
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
