"""The contract layer: every error an API client can meet, shaped as JSON in one place.

- ``DomainError``: a refusal the domain raises (a version conflict, invalid bulk items, a bad CSV, ...) carries
  its HTTP status, its ``code`` and its body; views do not catch them, this handler answers them.
- Database trouble that is not the client's fault (a lost connection, a timeout, a held lock, a deadlock) is a
  503 with Retry-After (or a 409), never a 500 and never a success.
- DRF's own errors get a ``code`` beside every ``detail`` and a dict for every validation error.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A refusal of the domain with its HTTP answer: ``status_code``, ``code`` and ``body()`` (``detail`` and
    ``code``, plus whatever a subclass adds). ``status_for(request)`` may depend on how the request asked."""

    status_code = 400
    code = "invalid"

    def status_for(self, request: Request | None) -> int:
        return self.status_code

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "code": self.code}

    def headers(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class DatabaseTrouble:
    """How the API answers a database failure that is not the client's fault: never a 500, never a success."""

    status: int
    code: str
    detail: str
    retry_after: bool = True


# SQLSTATEs (PostgreSQL appendix A) by how they are answered. Classes 08, 53, 58 and 57P0x: the connection
# or the server went away, or ran out of resources; 57014: statement_timeout (or a cancel); 55P03:
# lock_timeout; class 40: deadlock or serialization failure (another writer won the race; a retry may succeed).
_LOST = DatabaseTrouble(503, "database_unavailable", "The database is unavailable; nothing was written. Try again.")
_TIMEOUT = DatabaseTrouble(503, "database_timeout", "The request took too long and was cancelled; nothing was written.")
_LOCKED = DatabaseTrouble(503, "database_busy", "The data is locked by another change; nothing was written. Try again.")
_RACE = DatabaseTrouble(
    409, "concurrent_change", "A concurrent change got in the way; nothing was written. Try again.", False
)


def database_trouble(exc: BaseException) -> DatabaseTrouble | None:
    """The answer for ``exc`` when it is a database failure a client can only wait out; None for anything else
    (an integrity or data error is a bug or the client's input, and is handled where it can happen)."""
    if not isinstance(exc, DatabaseError):
        return None
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    if sqlstate == "57014":
        return _TIMEOUT
    if sqlstate == "55P03":
        return _LOCKED
    if sqlstate.startswith("40"):
        return _RACE
    if sqlstate[:2] in ("08", "53", "58") or sqlstate.startswith("57P"):
        return _LOST  # connection, insufficient resources, system error, shutdown
    if isinstance(exc, InterfaceError) or (isinstance(exc, OperationalError) and not sqlstate):
        return _LOST  # the connection is closed or could not be made (no server answer, so no SQLSTATE)
    return None


def database_trouble_response(trouble: DatabaseTrouble) -> Response:
    headers = {"Retry-After": str(settings.DB_RETRY_AFTER_SECONDS)} if trouble.retry_after else None
    return Response({"detail": trouble.detail, "code": trouble.code}, status=trouble.status, headers=headers)


def _code_of(exc: exceptions.APIException) -> str:
    detail = exc.detail
    code = getattr(detail, "code", None)
    return str(code or exc.default_code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Domain errors and database trouble as above; then DRF's handler, with ``code`` beside every ``detail`` and a
    dict for every validation error. A model's ``DoesNotExist`` is a 404."""
    if isinstance(exc, DomainError):
        request = context.get("request")
        return Response(exc.body(), status=exc.status_for(request), headers=exc.headers() or None)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, UnreadablePostError):
        exc = exceptions.ParseError(str(exc) or "The request body could not be read.", code="incomplete_body")
    trouble = database_trouble(exc)
    if trouble is not None:
        return database_trouble_response(trouble)
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, list):
            response.data = {"non_field_errors": data}
    elif (
        isinstance(data, dict) and "detail" in data and "code" not in data and isinstance(exc, exceptions.APIException)
    ):
        data["code"] = _code_of(exc)
    return response
