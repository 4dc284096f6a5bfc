"""What the tracker's views share: path ids, ETags, flags, and the metadata and negotiation of special actions."""

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from ..models import MAX_ID, Issue

ID_REGEX = r"[0-9]+"
# An issue in a path: its id, or its key (``WEB-42``, any case).
ISSUE_REF_REGEX = r"[0-9]+|[A-Za-z][A-Za-z0-9]{0,9}-[0-9]+"


def parse_id(raw: str) -> int:
    """A path id as an int; ids the database cannot hold are simply not found."""
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise NotFound()
    return value


def etag_of(issue: Issue) -> str:
    return f'"{issue.version}"'


def parse_etag(header: str) -> int | None:
    """The version in an ``If-Match``/``If-None-Match`` value such as ``"3"`` or ``W/"3"``; None if none."""
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None


def parse_flag(params: Any, name: str) -> bool:
    """A boolean query parameter (``true/false/1/0/yes/no``); anything else is a 400 naming it."""
    raw = params.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValidationError({name: ["Must be true or false."]})


class NoObjectMetadata(SimpleMetadata):
    """OPTIONS for a collection action that takes PUT (bulk-status): DRF would fetch an object for PUT."""

    def determine_actions(self, request: Request, view: Any) -> dict:
        return {}


class JSONErrorsContentNegotiation(BaseContentNegotiation):
    """For the CSV export: errors are always JSON whatever the ``Accept`` header (say ``text/csv``)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
