"""The CSV import: parse the upload as it streams in, validate each row, and write valid rows batch by batch in one
transaction (COPY, see issues/fastpath/copy.py), each row whole or not at all, into one project: its issue numbers
(one statement per batch), its labels, assignees who can see it."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Lower
from django.utils import timezone

from api.exceptions import database_trouble
from hooks.outbox import record_import

from .. import search_index
from ..access import users_who_see
from ..fastpath.copy import CopyWriter
from ..fastpath.session import hold_import_label_locks, long_transaction_budget, take_issue_numbers
from ..models import DONE_STATUSES, MAX_ID, EventType, Issue, IssueEvent, Project, Source
from ..services.common import User, actor_id
from ..services.labels import labels_ensure
from . import formats
from . import parse as csv_io

IMPORT_BATCH_SIZE = 5_000
IMPORT_MAX_ERRORS = 1_000


@dataclass
class ImportResult:
    """The answer of a CSV import (also of a dry run)."""

    total_rows: int = 0
    created: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = dataclass_field(default_factory=list)
    errors_truncated: bool = False
    ignored_columns: list[str] = dataclass_field(default_factory=list)
    format: str = "native"
    mapping: dict[str, Any] = dataclass_field(default_factory=dict)
    unmapped_values: dict[str, dict[str, int]] = dataclass_field(default_factory=dict)

    def add_errors(self, row_errors: Iterable[csv_io.RowError]) -> None:
        for error in row_errors:
            self.failed += 1
            if len(self.errors) < IMPORT_MAX_ERRORS:
                self.errors.append({"row": error.line, "errors": error.errors})
            else:
                self.errors_truncated = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_rows": self.total_rows,
            "created": self.created,
            "failed": self.failed,
            "errors": self.errors,
            "errors_truncated": self.errors_truncated,
            "ignored_columns": self.ignored_columns,
            "format": self.format,
            "mapping": self.mapping,
            "unmapped_values": self.unmapped_values,
        }


def issue_import_csv(
    *,
    actor: User,
    project: Project,
    chunks: Iterable[bytes],
    dry_run: bool = False,
    batch_size: int | None = None,
    format_name: str = "auto",
    mapping: formats.ImportMapping | None = None,
    progress: Callable[[int], None] | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> ImportResult:
    """Create issues in ``project`` from a CSV upload given as byte chunks (streamed: one batch in memory at a
    time). Whether the actor may import there is the caller's business (``issues.access``, maintainers).

    Partial success: each valid row is created whole (issue, labels, ``created`` event with source
    ``import``), each invalid one is reported by line. The whole import is one transaction and each batch
    a savepoint: a batch the database refuses is retried row by row, each row in its own savepoint, and
    the rows it still refuses become row errors. Raises ``csv_io.CsvDecodeError`` or
    ``csv_io.CsvHeaderError`` (a 400) and ``csv_io.ImportTooLarge`` (a 413); everything is rolled back
    then. ``dry_run`` does all of it and rolls back, so it answers exactly what a real import would; it takes no
    issue number from the project (a sequence is not rolled back): its rows are numbered ``-id`` instead.

    ``progress`` (jobs) is called after each batch is written with the number of rows done so far (valid and
    invalid); it runs inside this transaction, so whatever it records must go through another connection to be seen
    before the commit. ``max_bytes``/``max_rows`` replace IMPORT_MAX_BYTES/IMPORT_MAX_ROWS (a job's larger limits).
    """
    batch_size = batch_size or IMPORT_BATCH_SIZE
    mapping = mapping or formats.ImportMapping()
    now = timezone.now()
    parser = csv_io.ImportParser(
        chunks,
        max_bytes=max_bytes or settings.IMPORT_MAX_BYTES,
        max_rows=max_rows or settings.IMPORT_MAX_ROWS,
        format_name=format_name,
        mapping=mapping,
        now=now,
    )
    result = ImportResult()
    with transaction.atomic():
        long_transaction_budget()
        # The project's row as it is (``Access.project_by_key`` may hand over only its id and key): its visibility
        # decides which assignees may be given (``users_who_see``). Gone meanwhile: DoesNotExist, a 404.
        project = Project.objects.only("id", "key", "visibility").get(pk=project.pk)
        parser.read_header()
        result.ignored_columns = parser.ignored_columns
        result.format = parser.format
        assert parser.layout is not None
        result.mapping = parser.layout.effective()
        writer = _ImportWriter(
            project=project, actor_id=actor_id(actor), dry_run=dry_run, now=now, users=parser.layout.users
        )
        if not dry_run:  # the rows' search documents are queued by the insert trigger: written after the commit
            transaction.on_commit(search_index.index_soon)
        rows: list[csv_io.ParsedRow] = []
        row_errors: list[csv_io.RowError] = []
        done = 0
        for item in parser:
            if isinstance(item, csv_io.ParsedRow):
                rows.append(item)
            else:
                row_errors.append(item)
            if len(rows) + len(row_errors) >= batch_size:
                writer.write_batch(rows, row_errors, result)
                done += len(rows) + len(row_errors)
                if progress is not None:
                    progress(done)
                rows, row_errors = [], []
        writer.write_batch(rows, row_errors, result)
        if progress is not None:
            progress(done + len(rows) + len(row_errors))
        result.total_rows = parser.total_rows
        result.unmapped_values = {**parser.unmapped_values}
        if writer.unmapped_users:
            result.unmapped_values["assignee"] = writer.unmapped_users
        if dry_run:
            transaction.set_rollback(True)
        elif result.created:
            # One ``issues.imported`` webhook event per import (not one per row), in the import's transaction.
            record_import(
                project.pk,
                actor,
                {"total_rows": result.total_rows, "created": result.created, "failed": result.failed},
            )
    return result


class _ImportWriter:
    """Writes validated CSV rows into ``project`` batch by batch with COPY (ids and numbers drawn up front, one
    statement each); the row-by-row fallback uses bulk_create with one row and the id and number drawn for it."""

    def __init__(
        self, *, project: Project, actor_id: int | None, dry_run: bool, now: Any, users: formats.UserMapping
    ) -> None:
        self.project = project
        self.actor_id = actor_id
        self.dry_run = dry_run
        self.now = now
        self.users = users
        self.user_ids: dict[str, int | None] = {}  # raw assignee cell → user id (None: unknown)
        self.ambiguous: dict[str, list[str]] = {}  # assignee cells naming several users (by full name) → usernames
        self.unmapped_users: dict[str, int] = {}  # unknown assignee cells → rows (at most MAX_UNMAPPED_VALUES)
        self.cannot_see: set[str] = set()  # assignee cells naming an active user who cannot see the project
        self.label_ids: dict[str, int] = {}  # lower-cased name → label id, in the project
        self.label_lock_held = False
        self.copy = CopyWriter(project_id=project.pk, actor_id=actor_id, now=self.now)

    def _numbers(self, ids: list[int]) -> list[int]:
        """The issue numbers of a batch whose ids are ``ids``: the project's next ones, ascending (given in row
        order), in one statement. A dry run numbers its rows ``-id`` instead, unique and never a real number, so
        it leaves the project's sequence as it was."""
        if self.dry_run:
            return [-pk for pk in ids]
        return take_issue_numbers(self.project.pk, len(ids))

    def write_batch(
        self, rows: list[csv_io.ParsedRow], row_errors: list[csv_io.RowError], result: ImportResult
    ) -> None:
        errors = list(row_errors)
        self._resolve_users(rows)
        valid = []
        cannot_see = self.cannot_see
        unassign = self.users.unknown == "unassign"
        for row in rows:
            if row.assignee is not None and row.assignee in self.ambiguous:
                candidates = ", ".join(self.ambiguous[row.assignee])
                message = (
                    f'"{row.assignee}" is the name of several users ({candidates}): map it to one with mapping.users.'
                )
                errors.append(csv_io.RowError(row.line, {"assignee": [message]}))
            elif row.assignee is not None and self.user_ids[row.assignee] is None:
                self._count_unknown(row.assignee)
                if unassign:
                    valid.append(row._replace(assignee=None))
                    continue
                message = (
                    f'Unknown or deactivated user "{row.assignee}": no active user has this id, username or full name.'
                )
                errors.append(csv_io.RowError(row.line, {"assignee": [message]}))
            elif row.assignee in cannot_see:
                message = (
                    f'User "{row.assignee}" cannot see project {self.project.key} and cannot be assigned its issues.'
                )
                errors.append(csv_io.RowError(row.line, {"assignee": [message]}))
            else:
                valid.append(row)
        if valid:
            self._ensure_labels(valid)
            ids = self.copy.take_ids(len(valid))
            numbers = self._numbers(ids)
            # A batch the database refuses because of its rows (a constraint, a value out of range, a trigger)
            # is retried row by row, each row with the id and number the batch had for it (the savepoint's
            # rollback does not give them back). Trouble that is not the rows' fault (a lost connection, a
            # shutdown, a timeout, a deadlock) propagates: the whole import rolls back and the client is told.
            try:
                with transaction.atomic():
                    self.copy.write(valid, ids, numbers, self.user_ids, self._row_label_ids)
                result.created += len(valid)
            except DatabaseError as exc:
                if database_trouble(exc) is not None:
                    raise
                for row, pk, number in zip(valid, ids, numbers, strict=True):
                    try:
                        with transaction.atomic():
                            self._insert_orm(row, pk, number)
                        result.created += 1
                    except DatabaseError as exc:
                        if database_trouble(exc) is not None:
                            raise
                        reason = (str(exc).strip().splitlines() or ["database error"])[0][:200]
                        errors.append(
                            csv_io.RowError(row.line, {"non_field_errors": [f"The database refused the row: {reason}"]})
                        )
        errors.sort(key=attrgetter("line"))
        result.add_errors(errors)

    def _count_unknown(self, value: str) -> None:
        bucket = self.unmapped_users
        if value in bucket:
            bucket[value] += 1
        elif len(bucket) < formats.MAX_UNMAPPED_VALUES:
            bucket[value] = 1

    def _resolve_users(self, rows: list[csv_io.ParsedRow]) -> None:
        """Map every new assignee cell of the batch to an active user's id, None when no active user matches: the
        caller's ``users`` mapping first (source name → username), then a cell of digits as an id, then the
        username, then the full name (``first last``, ignoring case; unique matches only, several are
        ``ambiguous``): two queries at most; then which of those users cannot see the project
        (``users_who_see``): one more query, for the whole batch."""
        wanted = {row.assignee for row in rows if row.assignee is not None and row.assignee not in self.user_ids}
        if not wanted:
            return
        names = self.users.names
        target = {value: names.get(value.lower(), value) for value in wanted}
        numeric = {
            value: int(name) for value, name in target.items() if name.isascii() and name.isdigit() and len(name) <= 19
        }
        numeric = {value: pk for value, pk in numeric.items() if 1 <= pk <= MAX_ID}
        query = Q(username__in=list(set(target.values())))
        if numeric:
            query |= Q(pk__in=list(numeric.values()))
        by_id: set[int] = set()
        by_name: dict[str, int] = {}
        users = get_user_model().objects.filter(is_active=True)
        # Inactive users are not found: a deactivated account cannot be made an assignee.
        for pk, username in users.filter(query).values_list("pk", "username"):
            by_id.add(pk)
            by_name[username] = pk
        found: dict[str, int] = {}
        missing: dict[str, str] = {}  # cell → lower-cased name to try as a full name
        for value in wanted:
            user_id = numeric.get(value)
            user_id = user_id if user_id in by_id else by_name.get(target[value])
            self.user_ids[value] = user_id
            if user_id is not None:
                found[value] = user_id
            else:
                missing[value] = target[value].lower()
        if missing:
            full_names: dict[str, list[tuple[int, str]]] = {}
            matches = (
                users.annotate(full=Lower(Concat(F("first_name"), Value(" "), F("last_name"))))
                .filter(full__in=list(set(missing.values())))
                .values_list("full", "pk", "username")
            )
            for full, pk, username in matches:
                full_names.setdefault(full, []).append((pk, username))
            for value, name in missing.items():
                candidates = full_names.get(name, [])
                if len(candidates) == 1:
                    self.user_ids[value] = found[value] = candidates[0][0]
                elif candidates:
                    self.ambiguous[value] = sorted(username for _, username in candidates)
        if found:
            seeing = users_who_see(self.project, found.values())
            self.cannot_see.update(value for value, user_id in found.items() if user_id not in seeing)

    def _ensure_labels(self, rows: list[csv_io.ParsedRow]) -> None:
        """Find or create the batch's new label names in the project with one ``labels_ensure`` call (a set-based
        insert that skips names taken ignoring case, and one read): a label of the same name in another project is
        never used."""
        missing: dict[str, str] = {}
        for row in rows:
            for name in row.labels:
                key = name.lower()
                if key not in self.label_ids:
                    missing.setdefault(key, name)
        if not missing:
            return
        if not self.label_lock_held:
            # LABEL_USE_LOCK shared (no label the import links is deleted before it commits), and the imports' own.
            hold_import_label_locks(self.project.pk)
            self.label_lock_held = True
        for label in labels_ensure(self.project.pk, missing.values()):
            self.label_ids[label.name.lower()] = label.pk

    def _row_label_ids(self, row: csv_io.ParsedRow) -> set[int]:
        return {self.label_ids[name.lower()] for name in row.labels}

    def _insert_orm(self, row: csv_io.ParsedRow, pk: int, number: int) -> None:
        """One row with the ORM (the retry of a refused batch): the issue with id ``pk`` and number ``number``, its
        label links and its event."""
        now = self.now
        resolved = row.resolved_at or (now if row.status in DONE_STATUSES else None)
        Issue.objects.bulk_create(
            [
                Issue(
                    pk=pk,
                    project_id=self.project.pk,
                    number=number,
                    title=row.title,
                    description=row.description,
                    status=row.status,
                    priority=row.priority,
                    assignee_id=self.user_ids[row.assignee] if row.assignee is not None else None,
                    reporter_id=self.actor_id,
                    created_at=row.created_at or now,
                    updated_at=row.updated_at or now,
                    resolved_at=resolved,
                )
            ]
        )
        through = Issue.labels.through
        through.objects.bulk_create(through(issue_id=pk, label_id=label_id) for label_id in self._row_label_ids(row))
        IssueEvent.objects.create(
            issue_id=pk,
            type=EventType.CREATED,
            actor_id=self.actor_id,
            source=Source.IMPORT,
            timestamp=now,
            details={"source_key": row.source_key} if row.source_key else {},
        )
