"""Every write of the tracker. Each function writes its rows and their timeline events in one transaction."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework.exceptions import APIException

from . import csv_io, events
from .exceptions import VersionConflict, database_trouble
from .fastpath.prepared import PreparedGet
from .fastpath.session import long_transaction_budget
from .fastpath.subqueries import LabelNamesJoined
from .models import (
    DONE_STATUSES,
    LABEL_SEPARATOR,
    MAX_ID,
    Comment,
    EventType,
    Issue,
    IssueEvent,
    Label,
    Priority,
    Source,
    Status,
)

UPDATABLE_FIELDS = ("title", "description", "status", "priority", "assignee")

User = AbstractBaseUser | AnonymousUser | None


def _actor_id(actor: User) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


# Label deletion against label use (PostgreSQL; a no-op elsewhere, where writers are serialised anyway). Every
# write that links labels to issues (issue create with labels, PATCH with labels, PUT labels, the CSV import, the
# admin's saves through the same services) takes this transaction-level advisory lock SHARED, before it locks any
# issue row; label_delete takes it EXCLUSIVE before it locks anything. So label users never wait on one another,
# and a deletion starts only when no write that links labels is in flight and none starts until it commits: no
# link to a label being deleted (no foreign-key violation), no link removed without its event, and a label that
# labels_ensure found stays there until the transaction ends.
LABEL_USE_LOCK = 0x1AB_E15E
# How long a deletion waits, for the lock and for the rows it locks, before it gives up (LabelBusy, a 503): an
# import holds the lock shared to its end, and label users that arrive meanwhile queue behind the deletion.
LABEL_DELETE_WAIT_MS = 2_000
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait that passed lock_timeout
LABELS_ENSURE_ATTEMPTS = 3


class LabelsChanged(APIException):
    """A label named in the request kept vanishing while it was being found (renamed away each time): a 409."""

    status_code = 409
    default_detail = "The labels changed while this request used them; nothing was written. Try again."
    default_code = "concurrent_change"


def hold_label_use_lock() -> None:
    """Take LABEL_USE_LOCK shared until the transaction ends. Call it before locking any issue row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LABEL_USE_LOCK])


def labels_ensure(names: Iterable[str]) -> list[Label]:
    """The labels named ``names`` (matched ignoring case), creating the missing ones. Callers that link the
    labels to issues hold LABEL_USE_LOCK (``hold_label_use_lock``), so none of them is deleted meanwhile.

    Race-safe: concurrent callers creating ``Bug`` and ``bug`` end with one label, because the insert
    skips rows that hit the case-insensitive unique index, and names are inserted in a fixed order. A name
    whose label was renamed between the insert and the read (the rename takes no lock) is inserted again.
    """
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name.lower(), name)
    if not wanted:
        return []
    found: dict[str, Label] = {}
    for _attempt in range(LABELS_ENSURE_ATTEMPTS):
        missing = sorted((key, name) for key, name in wanted.items() if key not in found)
        Label.objects.bulk_create([Label(name=name) for _, name in missing], ignore_conflicts=True)
        lnames = [key for key, _ in missing]
        labels = Label.objects.annotate(lname=Lower("name")).filter(lname__in=lnames)
        found.update((label.lname, label) for label in labels)
        if len(found) == len(wanted):
            return [found[key] for key in sorted(wanted)]
    raise LabelsChanged()


def _remember_labels(issue: Issue, labels: list[Label]) -> None:
    """Leave ``labels`` on the instance the way ``prefetch_related("labels")`` does, so that rendering
    the issue a service returns costs no further query."""
    cached = Label.objects.filter(pk__in=[label.pk for label in labels])
    cached._result_cache = list(labels)
    cached._prefetch_done = True
    issue._prefetched_objects_cache = {"labels": cached}


@transaction.atomic
def issue_create(
    *,
    actor: User,
    title: str,
    description: str = "",
    status: str = Status.OPEN,
    priority: str = Priority.MEDIUM,
    assignee: Any = None,
    labels: Iterable[str] = (),
    source: str = Source.API,
) -> Issue:
    """Create an issue, its labels (missing ones created) and its ``created`` event."""
    labels = list(labels)
    if labels:
        hold_label_use_lock()
    now = timezone.now()
    issue = Issue.objects.create(
        title=title,
        description=description,
        status=status,
        priority=priority,
        assignee=assignee,
        reporter_id=_actor_id(actor),
        created_at=now,
        updated_at=now,
        resolved_at=events.resolved_at_after(None, status, None, now),
    )
    label_objs = labels_ensure(labels)
    if label_objs:
        issue.labels.add(*label_objs)
    IssueEvent.objects.create(
        issue=issue, type=EventType.CREATED, actor_id=_actor_id(actor), source=source, timestamp=now, details={}
    )
    _remember_labels(issue, label_objs)
    return issue


@transaction.atomic
def issue_update(
    *,
    issue_id: int,
    actor: User,
    expected_version: int | None,
    changes: dict[str, Any],
    source: str = Source.API,
) -> tuple[Issue, bool]:
    """Apply ``changes`` (fields of UPDATABLE_FIELDS and ``labels``) to an issue.

    Returns ``(issue, changed)``. A change that changes nothing leaves the version alone.
    Raises ``Issue.DoesNotExist``, or ``VersionConflict`` when ``expected_version`` (if given) is not
    the current version: the row is locked, compared, and written with a compare-and-set on the version.
    A change of ``labels`` holds LABEL_USE_LOCK (shared), taken before the row lock.
    """
    if "labels" in changes:
        hold_label_use_lock()
    if expected_version is None:
        issue = Issue.objects.select_for_update().get(pk=issue_id)
        # Read after the lock is held, in a statement of its own: it sees every change committed before.
        current_names = [label.name for label in issue.labels.all()]
    else:
        # One statement locks the row and reads its label names. The names come from the snapshot taken
        # when the statement started; if the row changed while the statement waited for the lock, the
        # version changed too (every label change bumps it in the same transaction), so the check below
        # refuses the update before the names are used.
        issue = _issue_locked_with_labels(issue_id)
        if issue.version != expected_version:
            raise VersionConflict(issue, expected_version)
        current_names = issue.label_names()
    before = events.snapshot(issue, current_names)

    new_labels = None
    if "labels" in changes:
        new_labels = labels_ensure(changes["labels"])
    for field in UPDATABLE_FIELDS:
        if field in changes:
            setattr(issue, field, changes[field])
    new_names = current_names if new_labels is None else [label.name for label in new_labels]
    after = events.snapshot(issue, new_names)
    issue.label_names_joined = LABEL_SEPARATOR.join(new_names)

    diff = events.diff(before, after)
    if not diff:
        return issue, False

    now = timezone.now()
    issue.resolved_at = events.resolved_at_after(before["status"], issue.status, issue.resolved_at, now)
    issue.updated_at = now
    written = Issue.objects.filter(pk=issue.pk, version=issue.version).update(
        title=issue.title,
        description=issue.description,
        status=issue.status,
        priority=issue.priority,
        assignee_id=issue.assignee_id,
        resolved_at=issue.resolved_at,
        updated_at=now,
        version=F("version") + 1,
    )
    if written != 1:  # cannot happen while the row lock is held; the compare-and-set is the guarantee
        raise VersionConflict(Issue.objects.get(pk=issue.pk), expected_version)
    issue.version += 1
    if new_labels is not None and any(change.type == EventType.LABELS_CHANGED for change in diff):
        issue.labels.set(new_labels)
    IssueEvent.objects.bulk_create(
        events.build_events(issue_id=issue.pk, changes=diff, actor_id=_actor_id(actor), source=source, timestamp=now)
    )
    return issue, True


def _issue_locked_with_labels(issue_id: int) -> Issue:
    """The issue, locked (``SELECT … FOR UPDATE``), with its label names joined in. Raises ``DoesNotExist``."""
    return _ISSUE_LOCKED_WITH_LABELS.get(issue_id)


# Compiled once, prepared per connection on PostgreSQL (the PATCH path runs it on every request).
_ISSUE_LOCKED_WITH_LABELS = PreparedGet(
    lambda issue_id: (
        Issue.objects.select_for_update()
        .annotate(label_names_joined=LabelNamesJoined(separator=LABEL_SEPARATOR))
        .filter(pk=issue_id)
    )
)


@transaction.atomic
def comment_create(*, issue_id: int, author: User, body: str, source: str = Source.API) -> Comment:
    """Add a comment and its ``commented`` event; the issue's ``updated_at`` moves, its version does not.

    Raises ``Issue.DoesNotExist``.
    """
    now = timezone.now()
    if not Issue.objects.filter(pk=issue_id).update(updated_at=now):
        raise Issue.DoesNotExist(f"Issue {issue_id} does not exist")
    comment = Comment.objects.create(issue_id=issue_id, author_id=_actor_id(author), body=body, created_at=now)
    IssueEvent.objects.create(
        issue_id=issue_id,
        type=EventType.COMMENTED,
        actor_id=_actor_id(author),
        source=source,
        timestamp=now,
        details={"comment_id": comment.pk, "excerpt": events.comment_excerpt(body)},
    )
    return comment


class LabelNameTaken(Exception):
    """Another label already has this name (ignoring case)."""


def label_create(*, name: str, color: str | None = None) -> Label:
    """Create a label. Raises ``LabelNameTaken`` when the name exists ignoring case."""
    label = Label(name=name)
    if color:
        label.color = color
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError as exc:
        raise LabelNameTaken(name) from exc
    return label


def label_update(*, label: Label, name: str | None = None, color: str | None = None) -> Label:
    """Rename or recolour a label; issues keep it (no timeline event). Raises ``LabelNameTaken``, or
    ``Label.DoesNotExist`` when the label was deleted meanwhile."""
    if name is not None:
        label.name = name
    if color is not None:
        label.color = color
    try:
        with transaction.atomic():
            updated = Label.objects.filter(pk=label.pk).update(name=label.name, color=label.color)
    except IntegrityError as exc:
        raise LabelNameTaken(name) from exc
    if not updated:
        raise Label.DoesNotExist(f"Label {label.pk} does not exist")
    return label


class LabelBusy(Exception):
    """A deletion could not take its locks within LABEL_DELETE_WAIT_MS (an import using labels, say)."""


# Waits at most LABEL_DELETE_WAIT_MS (or the connection's lock_timeout when shorter) for every lock from here to
# the end of the transaction, then takes LABEL_USE_LOCK exclusive. The CTE is read before the lock is asked for,
# so the shorter timeout is in force for that wait.
_LABEL_USE_LOCK_EXCLUSIVE = (
    "WITH bounded AS MATERIALIZED (SELECT set_config('lock_timeout', "
    "CASE WHEN setting::bigint BETWEEN 1 AND %s THEN setting ELSE %s END, true) FROM pg_settings "
    "WHERE name = 'lock_timeout') SELECT pg_advisory_xact_lock(%s) FROM bounded"
)


def label_delete(*, label: Label, actor: User, source: str = Source.API) -> int:
    """Delete a label. Each issue that carried it gets a ``labels_changed`` event and a new version,
    in a constant number of queries. Returns the number of issues changed.

    Takes LABEL_USE_LOCK exclusive first, so no write that links labels is in flight: the issues read next
    are all those that carry the label, each link removed gets its event, and nobody links the label until
    it is gone (then they create it anew). Raises ``Label.DoesNotExist`` when the label is gone already,
    ``LabelBusy`` when a lock is not free within LABEL_DELETE_WAIT_MS; nothing is written then.
    """
    try:
        with transaction.atomic():
            return _label_delete_locked(label.pk, actor_id=_actor_id(actor), source=source)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise LabelBusy(
                "The label is in use by a change still in progress (an import, say); it was not deleted. "
                "Try again in a moment."
            ) from exc
        raise


def _label_delete_locked(label_id: int, *, actor_id: int | None, source: str) -> int:
    if connection.vendor == "postgresql":
        wait = LABEL_DELETE_WAIT_MS
        with connection.cursor() as cursor:
            cursor.execute(_LABEL_USE_LOCK_EXCLUSIVE, [wait, str(wait), LABEL_USE_LOCK])
    # Read again under the lock: the name the events record is the current one (a rename in flight is waited for).
    label = Label.objects.select_for_update().get(pk=label_id)
    issue_ids = list(Issue.objects.select_for_update().filter(labels=label).order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    if issue_ids:
        Issue.objects.filter(pk__in=issue_ids).update(version=F("version") + 1, updated_at=now)
        IssueEvent.objects.bulk_create(
            IssueEvent(
                issue_id=issue_id,
                type=EventType.LABELS_CHANGED,
                details={"added": [], "removed": [label.name]},
                actor_id=actor_id,
                source=source,
                timestamp=now,
            )
            for issue_id in issue_ids
        )
    label.delete()
    return len(issue_ids)


# ======================================================================================================
# Bulk status changes and CSV import (issue 3). Everything below is set-based: the number of queries
# does not grow with the number of items or rows (the CSV import issues a fixed number per batch).
# ======================================================================================================


@dataclass
class BulkItem:
    """One item of a bulk status change, as parsed from the request. ``errors`` holds what the parser
    found wrong with it (field → messages); the service adds unknown ids."""

    index: int
    id: Any
    status: Any
    version: int | None = None
    errors: dict[str, list[str]] = dataclass_field(default_factory=dict)


# One changed item: (id, old status, new status, old resolved_at, new resolved_at).
BulkChange = tuple[int, str, str, Any, Any]


class BulkInvalid(Exception):
    """Some items are invalid; ``errors`` lists every one of them as ``{"index", "id", "errors"}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid item(s)")
        self.errors = errors


class BulkConflict(Exception):
    """Some items carry a stale version; ``conflicts`` lists them as ``{"id", "expected", "current"}``."""

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(conflicts)} version conflict(s)")
        self.conflicts = conflicts


@transaction.atomic
def issue_bulk_set_status(*, actor: User, items: Sequence[BulkItem], source: str = Source.BULK) -> dict[str, Any]:
    """Set the status of many issues at once, all or nothing, in a constant number of queries.

    The rows are locked in id order (``SELECT … FOR UPDATE ORDER BY id``), so overlapping bulks wait for
    each other instead of deadlocking. Raises ``BulkInvalid`` when any item is invalid or names an
    unknown issue, ``BulkConflict`` when any item's version is stale; nothing is written then.
    Items already in their target status are left alone (no version bump, no event). Every changed issue
    gets version + 1, ``resolved_at`` per ``events.resolved_at_after`` and one ``status_changed`` event.
    Returns ``{"updated", "unchanged", "results": [{"id", "status", "version"}]}`` in request order.
    """
    checkable = [item for item in items if type(item.id) is int and "id" not in item.errors]
    wanted_ids = sorted({item.id for item in checkable})
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        # Raw SQL with one array parameter: Django would compile (and psycopg send) one parameter per id.
        # Only whether resolved_at is set matters here (the UPDATE keeps, sets or clears it in SQL).
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, status, version, resolved_at IS NOT NULL FROM {Issue._meta.db_table} "
                "WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
                [_pg_int_array(wanted_ids)],
            )
            current = {pk: (status, version, resolved or None) for pk, status, version, resolved in cursor.fetchall()}
    else:
        current = {
            pk: (status, version, resolved_at)
            for pk, status, version, resolved_at in Issue.objects.select_for_update()
            .filter(pk__in=wanted_ids)
            .order_by("pk")
            .values_list("pk", "status", "version", "resolved_at")
        }
    for item in checkable:
        if item.id not in current:
            item.errors["id"] = [f"No issue has id {item.id}."]
    invalid = [{"index": item.index, "id": item.id, "errors": item.errors} for item in items if item.errors]
    if invalid:
        raise BulkInvalid(invalid)
    conflicts = [
        {"id": item.id, "expected": item.version, "current": current[item.id][1]}
        for item in items
        if item.version is not None and item.version != current[item.id][1]
    ]
    if conflicts:
        raise BulkConflict(conflicts)

    now = timezone.now()
    resolved_at_after = events.resolved_at_after
    changes: list[BulkChange] = []
    results = []
    for item in items:
        old_status, version, old_resolved_at = current[item.id]
        if old_status == item.status:
            results.append({"id": item.id, "status": old_status, "version": version})
            continue
        resolved_at = resolved_at_after(old_status, item.status, old_resolved_at, now)
        changes.append((item.id, old_status, item.status, old_resolved_at, resolved_at))
        results.append({"id": item.id, "status": item.status, "version": version + 1})

    if changes:
        write = _bulk_write_postgresql if postgresql else _bulk_write_orm
        write(changes, actor_id=_actor_id(actor), source=source, now=now)
    return {"updated": len(changes), "unchanged": len(items) - len(changes), "results": results}


def _pg_int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers: one string parameter instead of one parameter per value."""
    return "{" + ",".join(map(str, values)) + "}"


def _pg_text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings, each element quoted (backslash and double quote escaped)."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def _bulk_write_postgresql(changes: list[BulkChange], *, actor_id: Any, source: str, now: Any) -> None:
    """The issues' UPDATE and the events' INSERT as two statements over arrays (``unnest``), each array sent
    as one literal: a fixed, small number of parameters whatever the number of items."""
    ids = _pg_int_array(change[0] for change in changes)
    old_statuses = _pg_text_array(change[1] for change in changes)
    new_statuses = _pg_text_array(change[2] for change in changes)
    # resolved_at: 1 = set to now, 2 = clear, 0 = keep (see events.resolved_at_after)
    resolved = _pg_int_array(1 if new is now else 2 if new is None else 0 for _, _, _, _, new in changes)
    issue_table, event_table = Issue._meta.db_table, IssueEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {issue_table} AS i SET status = v.status, "
            "resolved_at = CASE v.resolved WHEN 1 THEN %s WHEN 2 THEN NULL ELSE i.resolved_at END, "
            "version = i.version + 1, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::smallint[]) AS v(id, status, resolved) WHERE i.id = v.id",
            [now, now, ids, new_statuses, resolved],
        )
        cursor.execute(
            f"INSERT INTO {event_table} (issue_id, type, timestamp, actor_id, source, details) "
            "SELECT v.id, %s, %s, %s, %s, jsonb_build_object('from', v.old, 'to', v.new) "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS v(id, old, new, n) ORDER BY v.n",
            [EventType.STATUS_CHANGED.value, now, actor_id, source, ids, old_statuses, new_statuses],
        )


def _bulk_write_orm(changes: list[BulkChange], *, actor_id: Any, source: str, now: Any) -> None:
    """The same through the ORM (SQLite): one UPDATE with CASE per status, one bulk_create of the events."""
    ids_by_status: dict[str, list[int]] = {}
    resolved_now: list[int] = []
    resolved_cleared: list[int] = []
    new_events: list[IssueEvent] = []
    for pk, old_status, new_status, old_resolved_at, resolved_at in changes:
        ids_by_status.setdefault(new_status, []).append(pk)
        if resolved_at is None:
            if old_resolved_at is not None:
                resolved_cleared.append(pk)
        elif resolved_at is now:
            resolved_now.append(pk)
        new_events.extend(
            events.build_events(
                issue_id=pk,
                changes=[events.Change(EventType.STATUS_CHANGED, {"from": old_status, "to": new_status})],
                actor_id=actor_id,
                source=source,
                timestamp=now,
            )
        )
    resolved_whens = []
    if resolved_now:
        resolved_whens.append(When(pk__in=resolved_now, then=Value(now)))
    if resolved_cleared:
        resolved_whens.append(When(pk__in=resolved_cleared, then=Value(None)))
    Issue.objects.filter(pk__in=[change[0] for change in changes]).update(
        status=Case(
            *(When(pk__in=ids, then=Value(status)) for status, ids in ids_by_status.items()),
            default=F("status"),
        ),
        resolved_at=Case(*resolved_whens, default=F("resolved_at"), output_field=DateTimeField()),
        version=F("version") + 1,
        updated_at=now,
    )
    IssueEvent.objects.bulk_create(new_events)


IMPORT_BATCH_SIZE = 5_000
IMPORT_MAX_ERRORS = 1_000
# Held (per transaction) by an import before it creates labels, so two imports cannot deadlock on the
# label name index by creating the same labels in different orders across their batches.
IMPORT_LABEL_LOCK = 0x15_5E_1AB


@dataclass
class ImportResult:
    """The answer of a CSV import (also of a dry run)."""

    total_rows: int = 0
    created: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = dataclass_field(default_factory=list)
    errors_truncated: bool = False
    ignored_columns: list[str] = dataclass_field(default_factory=list)

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
        }


def issue_import_csv(
    *,
    actor: User,
    chunks: Iterable[bytes],
    dry_run: bool = False,
    batch_size: int | None = None,
) -> ImportResult:
    """Create issues from a CSV upload given as byte chunks (streamed: one batch in memory at a time).

    Partial success: each valid row is created whole (issue, labels, ``created`` event with source
    ``import``), each invalid one is reported by line. The whole import is one transaction and each batch
    a savepoint: a batch the database refuses is retried row by row, each row in its own savepoint, and
    the rows it still refuses become row errors. Raises ``csv_io.CsvDecodeError`` or
    ``csv_io.CsvHeaderError`` (a 400) and ``csv_io.ImportTooLarge`` (a 413); everything is rolled back
    then. ``dry_run`` does all of it and rolls back, so it answers exactly what a real import would.
    """
    batch_size = batch_size or IMPORT_BATCH_SIZE
    parser = csv_io.ImportParser(chunks, max_bytes=settings.IMPORT_MAX_BYTES, max_rows=settings.IMPORT_MAX_ROWS)
    result = ImportResult()
    with transaction.atomic():
        long_transaction_budget()
        parser.read_header()
        result.ignored_columns = parser.ignored_columns
        writer = _ImportWriter(actor_id=_actor_id(actor))
        rows: list[csv_io.ParsedRow] = []
        row_errors: list[csv_io.RowError] = []
        for item in parser:
            if type(item) is csv_io.ParsedRow:
                rows.append(item)
            else:
                row_errors.append(item)
            if len(rows) + len(row_errors) >= batch_size:
                writer.write_batch(rows, row_errors, result)
                rows, row_errors = [], []
        writer.write_batch(rows, row_errors, result)
        result.total_rows = parser.total_rows
        if dry_run:
            transaction.set_rollback(True)
    return result


NULL = "\\N"  # NULL in PostgreSQL's COPY text format
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """``value`` escaped for COPY's text format (backslash, tab, newline, carriage return)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


class _ImportWriter:
    """Writes validated CSV rows batch by batch: PostgreSQL COPY (ids drawn from the sequence up front),
    or bulk_create elsewhere; the row-by-row fallback uses bulk_create with one row."""

    def __init__(self, *, actor_id: int | None) -> None:
        self.actor_id = actor_id
        self.now = timezone.now()
        self.user_ids: dict[str, int | None] = {}  # raw assignee cell → user id (None: unknown)
        self.label_ids: dict[str, int] = {}  # lower-cased name → label id
        self.label_lock_held = False
        self.use_copy = connection.vendor == "postgresql"
        if self.use_copy:
            with connection.cursor() as cursor:
                # Foreign keys are checked per statement, so a refused row fails inside its batch's savepoint
                # (not at COMMIT, where it would take the whole import down).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Issue._meta.db_table])
                self.sequence = cursor.fetchone()[0]

    def write_batch(
        self, rows: list[csv_io.ParsedRow], row_errors: list[csv_io.RowError], result: ImportResult
    ) -> None:
        errors = list(row_errors)
        self._resolve_users(rows)
        valid = []
        for row in rows:
            if row.assignee is not None and self.user_ids[row.assignee] is None:
                message = f'Unknown or deactivated user "{row.assignee}": no active user has this id or username.'
                errors.append(csv_io.RowError(row.line, {"assignee": [message]}))
            else:
                valid.append(row)
        if valid:
            self._ensure_labels(valid)
            # A batch the database refuses because of its rows (a constraint, a value out of range, a trigger)
            # is retried row by row. Trouble that is not the rows' fault (a lost connection, a shutdown, a
            # timeout, a deadlock) propagates: the whole import rolls back and the client is told (503/409).
            try:
                with transaction.atomic():
                    self._insert(valid)
                result.created += len(valid)
            except DatabaseError as exc:
                if database_trouble(exc) is not None:
                    raise
                for row in valid:
                    try:
                        with transaction.atomic():
                            self._insert_orm([row])
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

    def _resolve_users(self, rows: list[csv_io.ParsedRow]) -> None:
        """Map every new assignee cell of the batch to an active user's id (by id first, then username), None
        when no active user matches: one query."""
        wanted = {row.assignee for row in rows if row.assignee is not None and row.assignee not in self.user_ids}
        if not wanted:
            return
        numeric = {value: int(value) for value in wanted if value.isascii() and value.isdigit() and len(value) <= 19}
        numeric = {value: pk for value, pk in numeric.items() if 1 <= pk <= MAX_ID}
        query = Q(username__in=list(wanted))
        if numeric:
            query |= Q(pk__in=list(numeric.values()))
        by_id: set[int] = set()
        by_name: dict[str, int] = {}
        # Inactive users are not found: a deactivated account cannot be made an assignee.
        for pk, username in get_user_model().objects.filter(query, is_active=True).values_list("pk", "username"):
            by_id.add(pk)
            by_name[username] = pk
        for value in wanted:
            pk = numeric.get(value)
            self.user_ids[value] = pk if pk in by_id else by_name.get(value)

    def _ensure_labels(self, rows: list[csv_io.ParsedRow]) -> None:
        """Create the batch's missing labels with one labels_ensure call."""
        missing: dict[str, str] = {}
        for row in rows:
            for name in row.labels:
                key = name.lower()
                if key not in self.label_ids:
                    missing.setdefault(key, name)
        if not missing:
            return
        if self.use_copy and not self.label_lock_held:
            # LABEL_USE_LOCK shared (no label the import links is deleted before it commits), and the imports'
            # own lock; in either order, as neither holder waits for anything the other's waiters hold.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock_shared(%s), pg_advisory_xact_lock(%s)",
                    [LABEL_USE_LOCK, IMPORT_LABEL_LOCK],
                )
            self.label_lock_held = True
        for label in labels_ensure(missing.values()):
            self.label_ids[label.name.lower()] = label.pk

    def _row_label_ids(self, row: csv_io.ParsedRow) -> set[int]:
        return {self.label_ids[name.lower()] for name in row.labels}

    def _insert(self, rows: list[csv_io.ParsedRow]) -> None:
        if self.use_copy:
            self._insert_copy(rows)
        else:
            self._insert_orm(rows)

    def _insert_copy(self, rows: list[csv_io.ParsedRow]) -> None:
        """Three COPY statements (issues, label links, events) plus one query for the ids."""
        qn = connection.ops.quote_name
        now = self.now.isoformat()
        actor = str(self.actor_id) if self.actor_id is not None else NULL
        user_ids = self.user_ids
        done = {status.value for status in DONE_STATUSES}
        issue_columns = (
            "id, title, description, status, priority, assignee_id, reporter_id, version, "
            "created_at, updated_at, resolved_at"
        )
        issue_sql = f"COPY {qn(Issue._meta.db_table)} ({issue_columns}) FROM STDIN"
        link_sql = f"COPY {qn(Issue.labels.through._meta.db_table)} (issue_id, label_id) FROM STDIN"
        event_columns = "issue_id, type, timestamp, actor_id, source, details"
        event_sql = f"COPY {qn(IssueEvent._meta.db_table)} ({event_columns}) FROM STDIN"
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequence, len(rows)])
            ids = [pk for (pk,) in cursor.fetchall()]
            raw = cursor.cursor
            with connection.wrap_database_errors:
                # COPY text built here (escaping only the fields that need it) and written in one piece per
                # table: much cheaper than one write_row call per row.
                text = _copy_text
                lines = []
                for pk, row in zip(ids, rows, strict=True):
                    assignee = str(user_ids[row.assignee]) if row.assignee is not None else NULL
                    resolved = now if row.status in done else NULL
                    lines.append(
                        f"{pk}\t{text(row.title)}\t{text(row.description)}\t{row.status}\t{row.priority}\t"
                        f"{assignee}\t{actor}\t1\t{now}\t{now}\t{resolved}\n"
                    )
                with raw.copy(issue_sql) as copy:
                    copy.write("".join(lines))
                links = [
                    f"{pk}\t{label_id}\n"
                    for pk, row in zip(ids, rows, strict=True)
                    if row.labels
                    for label_id in self._row_label_ids(row)
                ]
                if links:
                    with raw.copy(link_sql) as copy:
                        copy.write("".join(links))
                event_tail = f"\t{EventType.CREATED.value}\t{now}\t{actor}\t{Source.IMPORT.value}\t{{}}\n"
                with raw.copy(event_sql) as copy:
                    copy.write("".join(f"{pk}{event_tail}" for pk in ids))

    def _insert_orm(self, rows: list[csv_io.ParsedRow]) -> None:
        """bulk_create of the issues (ids returned), then of their label links and events."""
        now = self.now
        issues = [
            Issue(
                title=row.title,
                description=row.description,
                status=row.status,
                priority=row.priority,
                assignee_id=self.user_ids[row.assignee] if row.assignee is not None else None,
                reporter_id=self.actor_id,
                created_at=now,
                updated_at=now,
                resolved_at=now if row.status in DONE_STATUSES else None,
            )
            for row in rows
        ]
        Issue.objects.bulk_create(issues)
        through = Issue.labels.through
        through.objects.bulk_create(
            through(issue_id=issue.pk, label_id=label_id)
            for issue, row in zip(issues, rows, strict=True)
            if row.labels
            for label_id in self._row_label_ids(row)
        )
        IssueEvent.objects.bulk_create(
            IssueEvent(
                issue_id=issue.pk,
                type=EventType.CREATED,
                actor_id=self.actor_id,
                source=Source.IMPORT,
                timestamp=now,
                details={},
            )
            for issue in issues
        )
