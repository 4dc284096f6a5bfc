"""Guards in front of every /api/ request: body size limits and JSON for errors Django would render as HTML."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("issue_tracker.api")

API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


def json_error(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def body_limit_for(path: str) -> int:
    """The largest body accepted on ``path``: the import endpoint takes files, everything else JSON."""
    if path.rstrip("/").endswith("/issues/import"):
        return settings.IMPORT_MAX_BYTES
    return settings.API_MAX_BODY_BYTES


class ApiGuardMiddleware:
    """Rejects oversized /api/ bodies with a JSON 413 before anything reads them, and turns an
    unhandled exception under /api/ into a JSON 500 (also with DEBUG on, where Django would send HTML)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path_info):
            raw_length = request.META.get("CONTENT_LENGTH") or "0"
            try:
                length = int(raw_length)
            except ValueError:
                return json_error("Invalid Content-Length header.", "bad_request", 400)
            limit = body_limit_for(request.path_info)
            if length > limit:
                return json_error(
                    f"Request body too large: {length} bytes, the limit is {limit} bytes.",
                    "request_too_large",
                    413,
                )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path_info):
            return None
        if isinstance(exception, RequestDataTooBig):
            return json_error(str(exception), "request_too_large", 413)
        if isinstance(exception, SuspiciousOperation):  # too many fields or files, a bad multipart body, ...
            return json_error(str(exception) or "Bad request.", "bad_request", 400)
        logger.exception("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return json_error("A server error occurred.", "server_error", 500)
