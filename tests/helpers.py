"""Helpers the tests share: API clients and token headers, JSON error answers, CSV bodies for the import and
from the export, what the database holds, and threads released together."""

import csv
import io
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from issues.models import Comment, Issue, IssueEvent, Label

T = TypeVar("T")

IMPORT_URL = "/api/issues/import"
IMPORT_HEADER = ["title", "description", "status", "priority", "assignee", "labels"]
# The API's collection and detail pages a user with any role may read (``{issue}``, ``{label}``: ids to fill in).
READ_PATHS = [
    "/api/issues",
    "/api/issues/{issue}",
    "/api/issues/{issue}/comments",
    "/api/issues/{issue}/timeline",
    "/api/labels",
    "/api/labels/{label}",
    "/api/users",
]


# --- authentication ---------------------------------------------------------------------------------------


def token_key(user: Any) -> str:
    """``user``'s API token, created on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def auth_header(user: Any) -> dict[str, str]:
    """The Authorization header of ``user``'s token, for ``requests`` against a live server."""
    return {"Authorization": f"Token {token_key(user)}"}


def make_client(user: Any = None) -> APIClient:
    """A DRF test client, authenticated by ``user``'s token when a user is given."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_key(user)}")
    return client


# --- answers ------------------------------------------------------------------------------------------------


def assert_json_error(response: Any, status: int | None = None, code: str | None = None) -> Any:
    """A JSON 4xx answer (``status`` exactly, when given; with ``code``, when given); returns its body."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def openapi(client: APIClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI schema /api/schema serves, and its paths keyed without a trailing slash."""
    schema = client.get("/api/schema", {"format": "json"}).json()
    return schema, {path.rstrip("/"): item for path, item in schema["paths"].items()}


# --- the database -------------------------------------------------------------------------------------------


def db_state() -> tuple[list[dict], list[dict], list[dict]]:
    """Every issue, event and label, as rows: equal before and after a request that must write nothing."""
    return (
        list(Issue.objects.order_by("pk").values()),
        list(IssueEvent.objects.order_by("pk").values()),
        list(Label.objects.order_by("pk").values()),
    )


def assert_no_writes(issue: Issue | None = None) -> None:
    """Nothing was written: no event and no comment; no issue and no label, or ``issue`` as it was."""
    if issue is None:
        assert Issue.objects.count() == 0
        assert Label.objects.count() == 0
    else:
        fresh = Issue.objects.get(pk=issue.pk)
        assert (fresh.version, fresh.title, fresh.status) == (issue.version, issue.title, issue.status)
    assert IssueEvent.objects.count() == 0
    assert Comment.objects.count() == 0


def privileges(user: Any) -> tuple:
    """What ``user`` may do, fresh from the database: staff, superuser, group names, direct permissions."""
    user.refresh_from_db()
    return (
        user.is_staff,
        user.is_superuser,
        sorted(user.groups.values_list("name", flat=True)),
        sorted(user.user_permissions.values_list("codename", flat=True)),
    )


# --- CSV ----------------------------------------------------------------------------------------------------


def csv_text(rows: Sequence[Sequence[str]], header: Sequence[str] = IMPORT_HEADER) -> str:
    """A CSV file: ``header``, then ``rows`` (quoted where a cell needs it, lines ending in \\n)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def post_csv(client: Any, body: bytes | str, query: str = "", **extra: Any) -> Any:
    """POST ``body`` to the import as a raw text/csv body."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return client.generic("POST", IMPORT_URL + query, body, content_type="text/csv", **extra)


def upload_csv(client: Any, body: bytes | str, query: str = "", **extra: Any) -> Any:
    """POST ``body`` to the import as the ``file`` of a multipart form (issues.csv), as the test client encodes it."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    upload = io.BytesIO(body)
    upload.name = "issues.csv"
    return client.post(IMPORT_URL + query, {"file": upload}, format="multipart", **extra)


def multipart_body(content: bytes, boundary: str) -> bytes:
    """A multipart/form-data body carrying ``content`` as the import's ``file`` field."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="issues.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    )
    return head.encode() + content + f"\r\n--{boundary}--\r\n".encode()


def streamed_csv_rows(response: Any) -> list[dict[str, str]]:
    """The rows of a streamed CSV answer (the export), by column name."""
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- concurrency --------------------------------------------------------------------------------------------


def released_together(n: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(i)`` for i in 0..n-1, each in its own thread, all released at the same instant; the results in
    order (the first exception is raised). Each thread closes its own database connection when done."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        try:
            barrier.wait(timeout=30)
            return call(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def run_together(*targets: Callable[[], object]) -> None:
    """Run each of ``targets`` in its own thread, released together; raise the first exception any raised."""
    released_together(len(targets), lambda i: targets[i]())


# --- tools a test needs -------------------------------------------------------------------------------------


def unavailable(tests: str, reason: str, install: str) -> NoReturn:
    """Skip on a developer machine, saying why and what to install; fail in CI (CI=true or 1), whose .ci/run
    installs what ``tests`` need."""
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(f"{tests} cannot run in CI: {reason} (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{reason}; {install}")
