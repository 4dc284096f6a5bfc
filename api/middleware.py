"""Guards in front of every /api/ request: body size limits, bodies read whole or refused, and JSON for errors
Django would render as HTML."""

import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError

from .exceptions import database_trouble

logger = logging.getLogger("issue_tracker.api")

API_PREFIX = "/api/"
HEALTH = re.compile(r"^/api/health/?$")


def is_api_path(path: str) -> bool:
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


def json_error(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def body_limit_for(path: str, *, asynchronous: bool = False) -> int:
    """The largest body accepted on ``path``: the import endpoint takes files (larger ones as a job, docs/jobs.md),
    everything else JSON."""
    if path.rstrip("/").endswith("/issues/import"):
        return settings.IMPORT_ASYNC_MAX_BYTES if asynchronous else settings.IMPORT_MAX_BYTES
    return settings.API_MAX_BODY_BYTES


def asks_for_a_job(request: Any) -> bool:
    """``Prefer: respond-async`` or ``?async=true`` (as ``issues.views.bulk_csv.wants_async`` reads them; an invalid
    ``async`` value is the view's 400, and until then the smaller limit holds)."""
    preferences = {item.split(";")[0].strip().lower() for item in request.headers.get("Prefer", "").split(",")}
    return "respond-async" in preferences or request.GET.get("async", "").strip().lower() in ("1", "true", "yes", "on")


class IncompleteBody(UnreadablePostError):
    """The client sent fewer bytes than its Content-Length said, then closed (or the connection broke)."""


class CompleteBodyStream:
    """A request body stream that raises ``IncompleteBody`` when it ends before ``Content-Length`` bytes.

    Django's own stream stops quietly at the end of what arrived, so a client that disconnects mid-upload
    would be read as a shorter, valid body (a CSV cut inside a cell, a multipart file cut short). Raising
    from ``read()`` makes whoever is reading fail inside their transaction, so nothing of it is committed.
    """

    def __init__(self, stream: Any, expected: int) -> None:
        self.stream = stream
        self.expected = expected
        self.received = 0

    def _check(self, data: bytes, asked: int | None) -> bytes:
        self.received += len(data)
        if not data and asked != 0 and self.received < self.expected:
            raise IncompleteBody(
                f"The request body ended after {self.received} of the {self.expected} bytes its Content-Length "
                "announced; nothing was written."
            )
        return data

    def read(self, size: int | None = -1, /) -> bytes:
        return self._check(self.stream.read(size), size)

    def readline(self, size: int | None = -1, /) -> bytes:
        return self._check(self.stream.readline(size), size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def close(self) -> None:
        self.stream.close()


class ApiGuardMiddleware:
    """Rejects oversized /api/ bodies with a JSON 413 before anything reads them, and turns an
    unhandled exception under /api/ into a JSON 500 (also with DEBUG on, where Django would send HTML)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path_info):
            try:
                request.get_host()  # a Host not in ALLOWED_HOSTS: JSON here (Django answers HTML with DEBUG on)
            except DisallowedHost as exc:
                return json_error(str(exc), "bad_request", 400)
            if settings.SECURE_SSL_REDIRECT and not request.is_secure() and not HEALTH.match(request.path_info):
                return json_error("This API answers over https only.", "https_required", 403)
            try:
                request.GET  # noqa: B018 - parsed here, so too many parameters is a JSON 400 before any view runs
            except TooManyFieldsSent as exc:
                return json_error(str(exc), "bad_request", 400)
            raw_length = request.META.get("CONTENT_LENGTH") or "0"
            try:
                length = int(raw_length)
            except ValueError:
                return json_error("Invalid Content-Length header.", "bad_request", 400)
            limit = body_limit_for(request.path_info, asynchronous=asks_for_a_job(request))
            if length > limit:
                return json_error(
                    f"Request body too large: {length} bytes, the limit is {limit} bytes.",
                    "request_too_large",
                    413,
                )
            if length > 0:
                # HttpRequest reads its body through this attribute (documented as the file-like interface
                # of the request: read(), readline(), iteration); wrapping it checks every reader at once.
                request._stream = CompleteBodyStream(request._stream, length)  # type: ignore[assignment]
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path_info):
            return None
        if isinstance(exception, RequestDataTooBig):
            return json_error(str(exception), "request_too_large", 413)
        if isinstance(exception, SuspiciousOperation):  # too many fields or files, a bad multipart body, ...
            return json_error(str(exception) or "Bad request.", "bad_request", 400)
        if isinstance(exception, UnreadablePostError):
            return json_error(str(exception) or "The request body could not be read.", "incomplete_body", 400)
        trouble = database_trouble(exception)
        if trouble is not None:
            response = json_error(trouble.detail, trouble.code, trouble.status)
            if trouble.retry_after:
                response["Retry-After"] = str(settings.DB_RETRY_AFTER_SECONDS)
            return response
        logger.exception("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return json_error("A server error occurred.", "server_error", 500)
