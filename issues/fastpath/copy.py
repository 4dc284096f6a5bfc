"""The CSV import's writes as PostgreSQL COPY: three COPY statements per batch (issues, label links, events), after
the batch's ids (drawn from the issue sequence up front, one query) and its issue numbers (from the project's
sequence, one query, by the importer). The COPY text is built here (escaping only the fields that need it) and
written in one piece per table: much cheaper than one ``write_row`` call per row, and than ``bulk_create`` (see
docs/performance.md)."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from psycopg import sql

from ..models import DONE_STATUSES, EventType, Issue, IssueEvent, Source

NULL = "\\N"  # NULL in PostgreSQL's COPY text format
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_DONE = frozenset(status.value for status in DONE_STATUSES)


def _copy_text(value: str) -> str:
    """``value`` escaped for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _details(source_key: str | None) -> str:
    """The ``created`` event's details in COPY text: the source tracker's key when the row had one."""
    if not source_key:
        return "{}"
    return _copy_text(json.dumps({"source_key": source_key}))


def _copy_statement(model: Any, columns: str) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(model._meta.db_table), sql.SQL(columns))


_ISSUES = _copy_statement(
    Issue,
    "id, project_id, number, title, description, status, priority, assignee_id, reporter_id, version, created_at, "
    "updated_at, resolved_at",
)
_LINKS = _copy_statement(Issue.labels.through, "issue_id, label_id")
_EVENTS = _copy_statement(IssueEvent, "issue_id, type, timestamp, actor_id, source, details")


class CopyWriter:
    """Writes batches of validated rows (``csv_io.parse.ParsedRow``) of one import into project ``project_id``, in
    the import's transaction."""

    def __init__(self, *, project_id: int, actor_id: int | None, now: datetime) -> None:
        self.project = str(int(project_id))
        self.actor = str(actor_id) if actor_id is not None else NULL
        self.now = now.isoformat()
        with connection.cursor() as cursor:
            # Foreign keys are checked per statement, so a refused row fails inside its batch's savepoint (not at
            # COMMIT, where it would take the whole import down).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Issue._meta.db_table])
            self.sequence = cursor.fetchone()[0]

    def take_ids(self, count: int) -> list[int]:
        """``count`` issue ids from the issue table's sequence, in one query. Drawn before the batch is written, so
        that the row-by-row retry of a refused batch gives each row the id (and number) the batch had for it."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequence, count])
            return [pk for (pk,) in cursor.fetchall()]

    def write(
        self,
        rows: list[Any],
        ids: list[int],
        numbers: list[int],
        user_ids: dict[str, int | None],
        label_ids: Callable[[Any], set[int]],
    ) -> None:
        """Insert ``rows`` whole, the i-th with id ``ids[i]`` and number ``numbers[i]``: the issues (assignee cells
        mapped by ``user_ids``), their label links (``label_ids(row)``) and one ``created`` event each. A row's times
        are the file's when it has them, else the import's (``resolved_at`` only for a resolved or closed row); the
        event keeps the import's time, with the source's key in its details."""
        now, actor, project, text = self.now, self.actor, self.project, _copy_text
        with connection.cursor() as cursor:
            raw = cursor.cursor
            with connection.wrap_database_errors:
                lines = []
                for pk, number, row in zip(ids, numbers, rows, strict=True):
                    assignee = str(user_ids[row.assignee]) if row.assignee is not None else NULL
                    resolved = row.resolved_at
                    resolved = resolved.isoformat() if resolved is not None else now if row.status in _DONE else NULL
                    created = row.created_at.isoformat() if row.created_at is not None else now
                    updated = row.updated_at.isoformat() if row.updated_at is not None else now
                    lines.append(
                        f"{pk}\t{project}\t{number}\t{text(row.title)}\t{text(row.description)}\t{row.status}\t"
                        f"{row.priority}\t{assignee}\t{actor}\t1\t{created}\t{updated}\t{resolved}\n"
                    )
                with raw.copy(_ISSUES) as copy:
                    copy.write("".join(lines))
                links = [
                    f"{pk}\t{label_id}\n"
                    for pk, row in zip(ids, rows, strict=True)
                    if row.labels
                    for label_id in label_ids(row)
                ]
                if links:
                    with raw.copy(_LINKS) as copy:
                        copy.write("".join(links))
                event_head = f"\t{EventType.CREATED.value}\t{now}\t{actor}\t{Source.IMPORT.value}\t"
                with raw.copy(_EVENTS) as copy:
                    copy.write(
                        "".join(
                            f"{pk}{event_head}{_details(row.source_key)}\n" for pk, row in zip(ids, rows, strict=True)
                        )
                    )
