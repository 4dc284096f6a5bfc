"""CSV export of issues.

``export_chunks`` turns issues into CSV text. Cells that a spreadsheet would run as a formula (first character
``=``, ``+``, ``-``, ``@``, tab or CR) get a ``'`` prefix. So that every cell survives an export → import round
trip unchanged, the prefix is also added to cells that are a run of ``'`` followed by one of those characters,
and the import removes exactly one leading ``'`` from any cell of the form ``'+[=+\\-@\\t\\r]…``.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet

from .parse import EXPORT_COLUMNS, escape_cell


class _Echo:
    """A file-like object whose ``write`` returns what it is given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.isoformat().replace("+00:00", "Z")


def export_row(issue: Any) -> list[str]:
    """The cells of one issue, annotated with ``assignee_name`` and ``reporter_name`` (usernames) and
    ``project_key`` (``selectors.issue_list``). Keys need no escaping: ``[A-Z][A-Z0-9]*``."""
    esc = escape_cell
    project_key = issue.project_key
    return [
        str(issue.pk),
        project_key,
        f"{project_key}-{issue.number}",
        esc(issue.title),
        esc(issue.description),
        issue.status,
        issue.priority,
        esc(issue.assignee_name or ""),
        esc(",".join(issue.label_names())),
        esc(issue.reporter_name or ""),
        str(issue.version),
        _iso(issue.created_at),
        _iso(issue.updated_at),
        _iso(issue.resolved_at),
    ]


def export_chunks(issues: Iterable[Any], *, rows_per_chunk: int = 500) -> Iterator[bytes]:
    """CSV bytes (UTF-8, CRLF line ends, header first) for ``issues``, in chunks of ``rows_per_chunk`` rows."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS).encode("utf-8")
    buffer: list[str] = []
    for issue in issues:
        buffer.append(writer.writerow(export_row(issue)))
        if len(buffer) >= rows_per_chunk:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode("utf-8")


EXPORT_CHUNK_ROWS = 2_000


def export_issues(queryset: QuerySet) -> Iterator[bytes]:
    """CSV of the issues of ``queryset`` (``selectors.issue_list``: scoped to the caller's projects, their keys and
    label names joined in), read
    ``EXPORT_CHUNK_ROWS`` at a time: one query per chunk, usernames joined in."""
    issues = queryset.annotate(assignee_name=F("assignee__username"), reporter_name=F("reporter__username"))
    return export_chunks(issues.iterator(chunk_size=EXPORT_CHUNK_ROWS))
