"""Abuse limits answer in JSON and write nothing: body size (413), JSON nesting and form fields (400), page
size (clamped), bulk items, import bytes and rows (413), multipart uploads (413)."""

import pytest

from issues.models import Issue, IssueEvent
from tests.factories import IssueFactory
from tests.helpers import assert_json_error, assert_no_writes, csv_text, post_csv, upload_csv


@pytest.mark.parametrize("path", ["/api/issues", "/api/issues/1", "/api/labels", "/api/auth/token"])
def test_body_over_the_limit_is_a_json_413_before_parsing(settings, member_client, path: str) -> None:
    settings.API_MAX_BODY_BYTES = 1_000
    body = '{"title": "' + "x" * 2_000 + '"}'
    response = member_client.generic("POST", path, body, content_type="application/json")
    detail = assert_json_error(response, 413, "request_too_large")["detail"]
    assert "1000 bytes" in detail
    assert_no_writes()


def test_body_at_the_limit_is_accepted(settings, member_client) -> None:
    body = '{"title": "' + "x" * 200 + '"}'
    settings.API_MAX_BODY_BYTES = len(body.encode())
    response = member_client.generic("POST", "/api/issues", body, content_type="application/json")
    assert response.status_code == 201


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deeply_nested_json_is_400(member_client, depth) -> None:
    raw = '{"title": ' + "[" * depth + "]" * depth + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert_json_error(response, 400)
    assert_no_writes()


@pytest.mark.parametrize(("depth", "parsed"), [(32, True), (33, False)])
def test_json_nesting_limit_is_exactly_32_levels(member_client, depth, parsed) -> None:
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # the outer object is level 1
    raw = '{"title": "deep", "labels": ' + nested + "}"
    response = member_client.generic("POST", "/api/issues", raw, content_type="application/json")
    assert response.status_code == 400
    if parsed:  # the body parsed; nested lists are just not label names
        assert "labels" in response.json()
    else:
        assert "nesting deeper than 32" in response.json()["detail"]
    assert_no_writes()


def test_too_many_form_fields_is_a_json_400(member_client) -> None:
    body = "&".join(f"f{i}=1" for i in range(1100))
    response = member_client.generic("POST", "/api/issues", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize(("page_size", "expected"), [("1000", 100), ("100", 100), ("7", 7), ("abc", 20), ("-3", 20)])
def test_page_size_is_clamped(viewer_client, page_size: str, expected: int) -> None:
    IssueFactory.create_batch(105)
    response = viewer_client.get(f"/api/issues?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == expected
    assert response.json()["count"] == 105


def test_page_past_the_end_is_a_json_404(viewer_client) -> None:
    IssueFactory.create_batch(3)
    assert_json_error(viewer_client.get("/api/issues?page=2"), 404)
    assert_json_error(viewer_client.get("/api/issues?page=zero"), 404)


def test_bulk_over_the_item_cap_is_a_json_400_and_changes_nothing(settings, maintainer_client) -> None:
    settings.BULK_MAX_ITEMS = 3
    issues = IssueFactory.create_batch(4)
    items = [{"id": issue.pk, "status": "closed"} for issue in issues]
    body = assert_json_error(maintainer_client.post("/api/issues/bulk-status", items, format="json"), 400)
    assert "At most 3 items" in str(body)
    assert set(Issue.objects.values_list("status", "version")) == {("open", 1)}
    ok = maintainer_client.post("/api/issues/bulk-status", items[:3], format="json")
    assert ok.status_code == 200
    assert ok.json()["updated"] == 3


def csv_of(rows: int) -> str:
    return csv_text([[f"Imported {n}", "open"] for n in range(rows)], header=["title", "status"])


def test_import_over_the_row_cap_is_a_json_413_and_writes_nothing(settings, maintainer_client) -> None:
    settings.IMPORT_MAX_ROWS = 3
    response = post_csv(maintainer_client, csv_of(4))
    assert_json_error(response, 413, "request_too_large")
    assert Issue.objects.count() == 0
    assert IssueEvent.objects.count() == 0
    ok = post_csv(maintainer_client, csv_of(3))
    assert ok.status_code == 200
    assert ok.json()["created"] == 3


@pytest.mark.parametrize("as_upload", [False, True])
def test_import_over_the_byte_cap_is_a_json_413_and_writes_nothing(settings, maintainer_client, as_upload) -> None:
    data = csv_of(50)
    settings.IMPORT_MAX_BYTES = len(data) - 1
    response = (upload_csv if as_upload else post_csv)(maintainer_client, data)
    assert_json_error(response, 413, "request_too_large")
    assert Issue.objects.count() == 0
