"""Idempotency-Key on the POSTs that create something (issue 11): a retry with the same key and request gets the
first answer and writes nothing; another request with the key is a 422; keys are per user and expire; and
32 concurrent requests with one key, over real HTTP, write once."""

import json
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from issues import idempotency
from issues.models import Comment, IdempotencyRecord, Issue, IssueEvent, Label
from tests.factories import IssueFactory, UserFactory
from tests.helpers import IMPORT_URL as IMPORT
from tests.helpers import auth_header, csv_text, make_client, multipart_body, post_csv, released_together, upload_csv

ISSUES = "/api/issues"
REPLAYED = "Idempotent-Replayed"


def key(value: str) -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": value}


def post_json(client, path: str, body, idem: str | None = None, **extra):
    return client.post(path, body, format="json", **(key(idem) if idem is not None else {}), **extra)


def csv_bytes(rows: int, prefix: str = "Row") -> bytes:
    cells = [[f"{prefix} {i}", "high", "imported"] for i in range(rows)]
    return csv_text(cells, header=["title", "priority", "labels"]).encode()


def assert_replay(first, again) -> None:
    """``again`` is the stored ``first``: same status, same bytes, same Location and ETag, marked replayed."""
    assert again.status_code == first.status_code
    assert again.content == first.content
    for header in ("Location", "ETag"):
        assert again.headers.get(header) == first.headers.get(header)
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"


# --- issues -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_and_body_creates_one_issue_and_replays_the_first_answer(member_client):
    body = {"title": "Login fails", "labels": ["bug"], "priority": "high"}
    first = post_json(member_client, ISSUES, body, "create-1")
    assert first.status_code == 201, first.content
    assert first["Location"].endswith(f"/api/issues/{first.json()['id']}")
    again = post_json(member_client, ISSUES, body, "create-1")
    assert_replay(first, again)
    assert Issue.objects.count() == 1
    assert IssueEvent.objects.count() == 1
    assert Label.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.method, record.path, record.response_status) == ("create-1", "POST", ISSUES, 201)


@pytest.mark.django_db
def test_key_order_spacing_and_trailing_slash_do_not_make_another_request(member_client):
    first = member_client.generic(
        "POST", ISSUES, '{"title": "Spaces", "priority": "low"}', content_type="application/json", **key("k")
    )
    assert first.status_code == 201
    again = member_client.generic(
        "POST", ISSUES + "/", '{ "priority":"low",\n"title":"Spaces" }', content_type="application/json", **key("k")
    )
    assert_replay(first, again)
    assert Issue.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422_and_writes_nothing(member_client):
    assert post_json(member_client, ISSUES, {"title": "One"}, "reused").status_code == 201
    response = post_json(member_client, ISSUES, {"title": "Two"}, "reused")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["detail"]
    assert list(Issue.objects.values_list("title", flat=True)) == ["One"]


@pytest.mark.django_db
def test_same_key_on_another_route_or_with_another_query_is_422(maintainer_client):
    assert post_json(maintainer_client, ISSUES, {"title": "x"}, "route").status_code == 201
    on_labels = post_json(maintainer_client, "/api/labels", {"name": "x"}, "route")
    assert on_labels.status_code == 422 and on_labels.json()["code"] == "idempotency_key_reused"
    with_query = post_json(maintainer_client, ISSUES + "?x=1", {"title": "x"}, "route")
    assert with_query.status_code == 422
    assert not Label.objects.exists()
    assert Issue.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user(member_client):
    other = make_client(UserFactory(username="other-member", role="member"))
    mine = post_json(member_client, ISSUES, {"title": "Same"}, "shared-key")
    theirs = post_json(other, ISSUES, {"title": "Same"}, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert Issue.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db
def test_an_expired_key_is_a_new_request(member_client, settings):
    first = post_json(member_client, ISSUES, {"title": "Old"}, "expiring")
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS + 1)
    )
    again = post_json(member_client, ISSUES, {"title": "Old"}, "expiring")
    assert again.status_code == 201
    assert REPLAYED not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert Issue.objects.count() == 2
    record = IdempotencyRecord.objects.get()  # the expired one was replaced
    assert json.loads(record.response_body)["id"] == again.json()["id"]
    # and within the window the new answer replays
    assert_replay(again, post_json(member_client, ISSUES, {"title": "Old"}, "expiring"))


@pytest.mark.django_db
def test_a_validation_error_is_stored_and_replayed(member_client):
    first = post_json(member_client, ISSUES, {"title": "   "}, "invalid")
    assert first.status_code == 400 and "title" in first.json()
    assert_replay(first, post_json(member_client, ISSUES, {"title": "   "}, "invalid"))
    assert not Issue.objects.exists()


@pytest.mark.parametrize(
    "bad", ["", "x" * 256, "clé", "tab\there", "nul\x00"], ids=["empty", "256", "non-ascii", "tab", "nul"]
)
@pytest.mark.django_db
def test_a_bad_key_is_400_naming_the_header(member_client, bad):
    response = post_json(member_client, ISSUES, {"title": "x"}, bad)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Issue.objects.exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_255_character_key_of_every_printable_character_is_accepted(member_client):
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    long_key = (printable * 3)[:255]
    first = post_json(member_client, ISSUES, {"title": "x"}, long_key)
    assert first.status_code == 201
    assert_replay(first, post_json(member_client, ISSUES, {"title": "x"}, long_key))


@pytest.mark.django_db
def test_without_the_header_nothing_is_read_or_stored(member_client):
    with CaptureQueriesContext(connection) as ctx:
        assert post_json(member_client, ISSUES, {"title": "plain"}).status_code == 201
    assert not any("idempotency" in query["sql"] for query in ctx.captured_queries)
    assert post_json(member_client, ISSUES, {"title": "plain"}).status_code == 201
    assert Issue.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


# --- comments, labels, bulk ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_comment_replay_adds_one_comment(member_client):
    issue = IssueFactory()
    url = f"/api/issues/{issue.pk}/comments"
    first = post_json(member_client, url, {"body": "Seen it too"}, "comment-1")
    assert first.status_code == 201
    assert_replay(first, post_json(member_client, url, {"body": "Seen it too"}, "comment-1"))
    assert Comment.objects.filter(issue=issue).count() == 1
    assert IssueEvent.objects.filter(issue=issue, type="commented").count() == 1
    other_issue = IssueFactory()
    elsewhere = post_json(member_client, f"/api/issues/{other_issue.pk}/comments", {"body": "Seen it too"}, "comment-1")
    assert elsewhere.status_code == 422
    # the key means nothing on a GET
    listed = member_client.get(url, **key("comment-1"))
    assert listed.status_code == 200 and REPLAYED not in listed.headers


@pytest.mark.django_db
def test_a_404_is_stored_and_replayed(member_client):
    first = post_json(member_client, "/api/issues/999999/comments", {"body": "x"}, "missing")
    assert first.status_code == 404
    assert_replay(first, post_json(member_client, "/api/issues/999999/comments", {"body": "x"}, "missing"))


@pytest.mark.django_db
def test_label_replay_answers_201_again_instead_of_name_taken(maintainer_client):
    first = post_json(maintainer_client, "/api/labels", {"name": "urgent", "color": "#ff0000"}, "label-1")
    assert first.status_code == 201
    assert_replay(first, post_json(maintainer_client, "/api/labels", {"name": "urgent", "color": "#ff0000"}, "label-1"))
    assert Label.objects.filter(name="urgent").count() == 1
    # a new key is a new request: the name is taken now
    assert post_json(maintainer_client, "/api/labels", {"name": "urgent"}, "label-2").status_code == 400


@pytest.mark.django_db
def test_bulk_status_replay_changes_nothing_more(maintainer_client):
    issues = [IssueFactory(), IssueFactory()]
    body = {"ids": [issue.pk for issue in issues], "status": "closed"}
    first = post_json(maintainer_client, "/api/issues/bulk-status", body, "bulk-1")
    assert first.status_code == 200 and first.json()["updated"] == 2
    events = IssueEvent.objects.count()
    assert_replay(first, post_json(maintainer_client, "/api/issues/bulk-status", body, "bulk-1"))
    assert IssueEvent.objects.count() == events
    assert {issue.version for issue in Issue.objects.all()} == {2}
    # PUT is not covered: the key is ignored and the bulk runs (unchanged: already closed)
    put = maintainer_client.put("/api/issues/bulk-status", body, format="json", **key("bulk-1"))
    assert put.status_code == 200 and put.json()["unchanged"] == 2 and REPLAYED not in put.headers


@pytest.mark.django_db
def test_a_conflict_is_not_stored_and_a_retry_runs_again(maintainer_client):
    issue = IssueFactory()
    body = [{"id": issue.pk, "status": "closed", "version": 7}]
    first = post_json(maintainer_client, "/api/issues/bulk-status", body, "stale")
    assert first.status_code == 409
    assert not IdempotencyRecord.objects.exists()
    Issue.objects.filter(pk=issue.pk).update(version=7)  # the client's version is now the current one
    retry = post_json(maintainer_client, "/api/issues/bulk-status", body, "stale")
    assert retry.status_code == 200 and REPLAYED not in retry.headers
    assert Issue.objects.get(pk=issue.pk).status == "closed"
    assert IdempotencyRecord.objects.get().response_status == 200


# --- import -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_raw_csv_import_replay_returns_the_same_counts_and_creates_nothing(maintainer_client):
    body = csv_bytes(25) + b",,\n"  # 25 rows and one invalid (no title)
    first = post_csv(maintainer_client, body, **key("import-1"))
    assert first.status_code == 200, first.content
    assert (first.json()["created"], first.json()["failed"]) == (25, 1)
    again = post_csv(maintainer_client, body, **key("import-1"))
    assert_replay(first, again)
    assert Issue.objects.count() == 25
    other = post_csv(maintainer_client, csv_bytes(25, "Other"), **key("import-1"))
    assert other.status_code == 422
    dry = post_csv(maintainer_client, body, "?dry_run=true", **key("import-1"))
    assert dry.status_code == 422
    assert Issue.objects.count() == 25


@pytest.mark.django_db
def test_multipart_import_is_compared_by_file_content_not_boundary(maintainer_client):
    content = csv_bytes(10)
    first = maintainer_client.generic(
        "POST",
        IMPORT,
        multipart_body(content, "first-boundary"),
        "multipart/form-data; boundary=first-boundary",
        **key("up"),
    )
    assert first.status_code == 200 and first.json()["created"] == 10
    again = maintainer_client.generic(
        "POST", IMPORT, multipart_body(content, "BOUNDARY-2"), "multipart/form-data; boundary=BOUNDARY-2", **key("up")
    )
    assert_replay(first, again)
    changed = maintainer_client.generic(
        "POST", IMPORT, multipart_body(content + b"One more,,\n", "b3"), "multipart/form-data; boundary=b3", **key("up")
    )
    assert changed.status_code == 422
    assert Issue.objects.count() == 10
    # the test client's own multipart encoding, another key: a new import
    fresh = upload_csv(maintainer_client, content, **key("up-2"))
    assert fresh.status_code == 200 and REPLAYED not in fresh.headers
    assert Issue.objects.count() == 20


@pytest.mark.django_db
def test_multipart_parsed_by_the_csrf_check_of_a_session_login_is_compared_by_content(maintainer):
    """With a session login Django's CSRF check reads the form (and so the upload) before the view runs."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(maintainer)
    token = "a" * 32
    client.cookies["csrftoken"] = token
    answers = []
    for boundary in ("one", "two"):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
        body = head.encode() + multipart_body(csv_bytes(5), boundary)
        answers.append(
            client.generic("POST", IMPORT, body, f"multipart/form-data; boundary={boundary}", **key("session"))
        )
    assert answers[0].status_code == 200 and answers[0].json()["created"] == 5, answers[0].content
    assert_replay(*answers)
    assert Issue.objects.count() == 5


@pytest.mark.django_db
def test_an_import_refused_before_reading_the_body_is_stored_for_that_body(maintainer_client):
    body = csv_bytes(3)
    first = post_csv(maintainer_client, body, "?dry_run=maybe", **key("bad"))
    assert first.status_code == 400 and "dry_run" in first.json()
    again = post_csv(maintainer_client, body, "?dry_run=maybe", **key("bad"))
    assert_replay(first, again)
    other_body = post_csv(maintainer_client, csv_bytes(4), "?dry_run=maybe", **key("bad"))
    assert other_body.status_code == 422
    assert not Issue.objects.exists()


@pytest.mark.django_db
def test_an_import_too_large_is_not_stored(maintainer_client, settings):
    body = csv_bytes(50)
    settings.IMPORT_MAX_BYTES = len(body) - 1
    for _ in range(2):
        response = post_csv(maintainer_client, body, **key("big"))
        assert response.status_code == 413 and REPLAYED not in response.headers
    assert not IdempotencyRecord.objects.exists()
    assert not Issue.objects.exists()


# --- expiry, schema -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_command_deletes_only_expired_records(member_client, settings, capsys):
    for name in ("old-1", "old-2", "fresh"):
        assert post_json(member_client, ISSUES, {"title": name}, name).status_code == 201
    expired = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS + 60)
    IdempotencyRecord.objects.filter(key__startswith="old").update(created_at=expired)
    call_command("purge_idempotency_keys")
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    assert "2" in capsys.readouterr().out


def test_schema_documents_the_header_and_its_answers():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    covered = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation.get("parameters", []))
    }
    assert covered == {
        ("/api/issues/", "post"),
        ("/api/issues/{id}/comments/", "post"),
        ("/api/issues/bulk-status/", "post"),
        ("/api/issues/import/", "post"),
        ("/api/labels/", "post"),
        ("/api/projects/", "post"),
    }
    for path, method in covered:
        responses = schema["paths"][path][method]["responses"]
        assert {"400", "409", "422"} <= set(responses)


# --- concurrency over real HTTP -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_32_concurrent_creates_with_one_key_create_one_issue(live_server):
    auth = auth_header(UserFactory(username="racer", role="member"))
    headers = {**auth, "Idempotency-Key": "race-create"}
    url = f"{live_server.url}/api/issues"

    def create(i: int) -> requests.Response:
        return requests.post(url, json={"title": "Only once", "priority": "high"}, headers=headers, timeout=60)

    responses = released_together(32, create)
    assert [r.status_code for r in responses] == [201] * 32, [(r.status_code, r.text[:200]) for r in responses]
    assert {r.json()["id"] for r in responses} == {Issue.objects.get().pk}
    assert len({r.content for r in responses}) == 1
    assert sum(REPLAYED not in r.headers for r in responses) == 1  # the one that ran; the others replayed
    assert IssueEvent.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_32_concurrent_imports_with_one_key_create_the_rows_once(live_server):
    auth = auth_header(UserFactory(username="importer", role="maintainer"))
    body = csv_bytes(200)
    headers = {**auth, "Idempotency-Key": "race-import", "Content-Type": "text/csv"}
    url = f"{live_server.url}/api/issues/import"

    def upload(i: int) -> requests.Response:
        return requests.post(url, data=body, headers=headers, timeout=120)

    responses = released_together(32, upload)
    assert [r.status_code for r in responses] == [200] * 32, [(r.status_code, r.text[:200]) for r in responses]
    assert {(r.json()["created"], r.json()["total_rows"]) for r in responses} == {(200, 200)}
    assert len({r.content for r in responses}) == 1
    assert sum(REPLAYED not in r.headers for r in responses) == 1
    assert Issue.objects.count() == 200
    assert Label.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_key_held_past_the_wait_is_409_in_use(live_server, monkeypatch):
    user = UserFactory(username="waiter", role="member")
    headers = {**auth_header(user), "Idempotency-Key": "held"}
    monkeypatch.setattr(idempotency, "LOCK_WAIT_SECONDS", 0.3)
    with transaction.atomic(), connection.cursor() as cursor:
        # this connection holds the key's lock, as a first request still running would
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [idempotency.LOCK_NAMESPACE, idempotency.lock_id(user.pk, "held")]
        )
        response = requests.post(f"{live_server.url}/api/issues", json={"title": "x"}, headers=headers, timeout=30)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert response.headers["Retry-After"] == "1"
    assert not Issue.objects.exists()
    # once the first is done (here: never stored anything), the retry runs
    retry = requests.post(f"{live_server.url}/api/issues", json={"title": "x"}, headers=headers, timeout=30)
    assert retry.status_code == 201 and REPLAYED not in retry.headers
    assert Issue.objects.count() == 1
