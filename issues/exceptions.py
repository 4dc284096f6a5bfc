"""Domain errors raised by services, and the DRF exception handler that shapes every API error as JSON."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class VersionConflict(Exception):
    """The client's version is not the issue's current one; ``current`` is the issue as it is now."""

    def __init__(self, current: Any, expected: int | None = None) -> None:
        super().__init__(f"version conflict on issue {current.pk}")
        self.current = current
        self.expected = expected


def _code_of(exc: exceptions.APIException) -> str:
    detail = exc.detail
    code = getattr(detail, "code", None)
    return str(code or exc.default_code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus ``code`` beside every ``detail`` and a dict for every validation error."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, list):
            response.data = {"non_field_errors": data}
    elif isinstance(data, dict) and "detail" in data and "code" not in data:
        data["code"] = _code_of(exc)
    return response
