"""Schema of the tracker: issues, their labels and comments, and the timeline of every change.

Models hold no behaviour that writes: every write lives in ``issues.services``.
"""

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .search_models import IssueSearch as IssueSearch  # re-exported: the search documents' tables
from .search_models import IssueSearchPending as IssueSearchPending
from .search_models import SearchGeneration as SearchGeneration
from .triggers import ISSUE_TRIGGERS
from .triggers import SEARCH_CONFIG as SEARCH_CONFIG  # re-exported: the search reads them from here
from .triggers import SEARCH_DOCUMENT_SQL as SEARCH_DOCUMENT_SQL
from .triggers import SEARCH_INLINE_ROWS as SEARCH_INLINE_ROWS

MAX_ID = 2**63 - 1  # largest primary key the database can hold (bigint)
LABEL_SEPARATOR = ","  # may not occur in a label name


class Status(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


DONE_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED})


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# Severity order of priorities, used for ``ordering=priority``.
PRIORITY_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}


class Source(models.TextChoices):
    API = "api", "API"
    BULK = "bulk", "Bulk"
    IMPORT = "import", "Import"
    ADMIN = "admin", "Admin"


class EventType(models.TextChoices):
    CREATED = "created", "Created"
    STATUS_CHANGED = "status_changed", "Status changed"
    ASSIGNEE_CHANGED = "assignee_changed", "Assignee changed"
    PRIORITY_CHANGED = "priority_changed", "Priority changed"
    TITLE_CHANGED = "title_changed", "Title changed"
    DESCRIPTION_CHANGED = "description_changed", "Description changed"
    LABELS_CHANGED = "labels_changed", "Labels changed"
    COMMENTED = "commented", "Commented"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private"
    INTERNAL = "internal", "Internal"


class Role(models.TextChoices):
    """A member's role in a project (what each may do: ``issues.access``)."""

    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    MAINTAINER = "maintainer", "Maintainer"


PROJECT_KEY_PATTERN = r"^[A-Z][A-Z0-9]{1,9}\Z"
PROJECT_KEY_MAX = 10
validate_project_key = RegexValidator(
    PROJECT_KEY_PATTERN, "A key is 2-10 characters, A-Z and 0-9, starting with a letter.", code="invalid"
)


def number_sequence_name(project_id: int) -> str:
    """The database sequence that numbers the issues of project ``project_id`` (created by its insert trigger)."""
    return f"issues_project_{int(project_id)}_number_seq"


class Project(models.Model):
    """A project: its own issues (numbered ``KEY-1``, ``KEY-2``, ...), labels and members.

    Each project has a database sequence for its issue numbers, created by the row's insert trigger and dropped
    with the row, so every way of creating a project (API, admin, migration, fixtures) has one. A sequence gives
    numbers without locking anything: creators in one project never wait for each other or for an import, and
    creators in different projects touch nothing in common. Numbers are never reused; a rolled-back insert leaves
    a gap, as in GitHub, GitLab and Jira.
    """

    key = models.CharField(max_length=PROJECT_KEY_MAX, unique=True, validators=[validate_project_key])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(condition=models.Q(key__regex=r"^[A-Z][A-Z0-9]{1,9}$"), name="project_key_format"),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="number_sequence_create",
                level=pgtrigger.Row,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                declare=[("seq", "text")],
                func=(
                    "seq := 'issues_project_' || NEW.id || '_number_seq';"
                    " EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I AS bigint', seq);"
                    " PERFORM setval(seq::regclass, 1, false); RETURN NULL;"
                ),
            ),
            pgtrigger.Trigger(
                name="number_sequence_drop",
                level=pgtrigger.Row,
                when=pgtrigger.After,
                operation=pgtrigger.Delete,
                func="EXECUTE format('DROP SEQUENCE IF EXISTS %I', 'issues_project_' || OLD.id || '_number_seq');"
                " RETURN NULL;",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Membership(models.Model):
    """A user's role in a project. Staff need none: they act as maintainers everywhere (``issues.access``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        ordering = ["project", "user"]
        # (user, project): the caller's memberships are read by user on every request.
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_user_project_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}: {self.role}"


def validate_label_name(value: str) -> None:
    """Label names are joined with ``,`` (and CSV cells split on ``,`` or ``;``), so neither may occur in one."""
    if "," in value or ";" in value:
        raise ValidationError("Label names may not contain ',' or ';'.")


class Label(models.Model):
    """A tag on the issues of one project. Names are unique in the project ignoring case (a functional unique
    index); an issue carries labels of its own project only (``issues.services``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels", db_index=False)
    name = models.CharField(max_length=50, validators=[validate_label_name])
    color = models.CharField(max_length=7, default="#cccccc")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint("project", Lower("name"), name="label_project_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Issue(models.Model):
    """An issue of a project, named ``KEY-number``. ``version`` is the optimistic-lock counter: +1 for every
    accepted change. ``project`` and ``number`` never change (a database trigger refuses it)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="issues", db_index=False)
    # From the project's sequence: given by the services (the import takes a batch's numbers in one statement),
    # else by the insert trigger below.
    number = models.BigIntegerField(editable=False)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    # No single-column indexes on the two user keys: the composite indexes below lead with them.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_issues",
        db_index=False,
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reported_issues",
        db_index=False,
    )
    labels = models.ManyToManyField(Label, blank=True, related_name="issues")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("bulk_update_issue", "Can change the status of many issues at once"),
            ("import_issue", "Can import issues from CSV"),
        ]
        # Every index costs each write of a row that changes an indexed column (status changes cannot be
        # HOT updates; measured in docs/performance.md). Priority has no index of its own:
        # four values match a quarter of the rows each, so a scan of issue_created_idx finds a page fast,
        # and ordering by priority sorts by severity rank, which no plain index serves.
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="issue_project_number_unique")]
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="issue_project_created_idx"),
            models.Index(fields=["created_at", "id"], name="issue_created_idx"),
            models.Index(fields=["updated_at", "id"], name="issue_updated_idx"),
            models.Index(fields=["assignee", "created_at", "id"], name="issue_assignee_created_idx"),
            models.Index(fields=["reporter", "created_at", "id"], name="issue_reporter_created_idx"),
            # Resolved issues only: serves the latency and throughput reports from the index alone.
            models.Index(
                fields=["resolved_at", "created_at", "status"],
                condition=models.Q(resolved_at__isnull=False),
                name="issue_resolved_cover_idx",
            ),
        ]
        # The triggers: issues/triggers.py (the tallies, the search documents, the number's default).
        triggers = ISSUE_TRIGGERS

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def project_key(self) -> str:
        """The project's key: the ``project_key_value`` annotation (``fastpath.subqueries.ProjectKey``, read by the
        selectors and services) when present, else the project's."""
        return self.__dict__.get("project_key_value") or self.project.key

    @property
    def key(self) -> str:
        """``KEY-number``, the issue's name."""
        return f"{self.project_key}-{self.number}"

    def label_names(self) -> list[str]:
        """The names of the issue's labels, ordered ignoring case. Reads the
        ``label_names_joined`` annotation of ``selectors.issue_list`` when present, else ``labels``."""
        if hasattr(self, "label_names_joined"):
            joined = self.label_names_joined
            names = joined.split(LABEL_SEPARATOR) if joined else []
        else:
            names = [label.name for label in self.labels.all()]
        return sorted(names, key=lambda name: (name.lower(), name))


class Comment(models.Model):
    """A comment on an issue. Adding one records a ``commented`` event but does not bump the version."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="comments", db_index=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["issue", "created_at", "id"], name="comment_issue_created_idx")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on #{self.issue_id}"


class IssueEvent(models.Model):
    """One entry of an issue's timeline, written in the same transaction as the change it records.

    Like an audit log (and django-simple-history's history rows), the table carries no database-level
    foreign-key constraints: only services write events, always in the transaction that writes the issue,
    and Django still cascades deletes. Skipping the per-row constraint triggers keeps bulk writes and
    imports set-based in cost.
    """

    issue = models.ForeignKey(
        Issue, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=32, choices=EventType.choices)
    timestamp = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["issue", "timestamp", "id"], name="event_issue_ts_idx")]

    def __str__(self) -> str:
        return f"{self.type} on #{self.issue_id}"


class IssueTally(models.Model):
    """The number of issues per project, kept by database triggers (``Issue.Meta.triggers``, django-pgtrigger), so
    that the unfiltered list's ``count`` over the projects a caller sees reads a few rows instead of running
    ``COUNT(*)`` over their issues.

    Each INSERT, DELETE or TRUNCATE statement on the issue table adds its row counts per project to a slot (0-63) of
    that project that no other open transaction holds, in the same transaction, so the sum is exact in every
    snapshot, and concurrent writers, a long import among them, never wait for each other's slot (unless 64 write
    to one project at once). Nothing else writes here.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    slot = models.SmallIntegerField()
    issues = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "slot"], name="tally_project_slot_unique")]

    def __str__(self) -> str:
        return f"project {self.project_id} slot {self.slot}: {self.issues}"


class IssueFacetTally(models.Model):
    """The number of issues per (assignee, project, status, priority), kept by the issue table's triggers (``facet_*``
    in ``Issue.Meta.triggers``) with the free-slot scheme of ``IssueTally``, beside the coarser ``IssueStatusTally``:
    a count filtered by assignee sums those assignees' rows only (the key leads with the assignee). ``assignee_id`` 0
    means unassigned (a unique key cannot hold NULL). Rows whose count went back to 0 stay (at most 64 slots per
    combination). Fillfactor 50 (migration 0018): the triggers' updates stay HOT (write no index entry)."""

    # No index of its own: the unique key holds it.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=20)
    priority = models.CharField(max_length=10)
    assignee_id = models.BigIntegerField()
    slot = models.SmallIntegerField()
    issues = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignee_id", "project", "status", "priority", "slot"], name="facet_tally_assignee_unique"
            )
        ]

    def __str__(self) -> str:
        return f"project {self.project_id} {self.status}/{self.priority}/{self.assignee_id} slot {self.slot}"


class IssueStatusTally(models.Model):
    """``IssueFacetTally`` without the assignee, written by the same statements in the same slots: a count with no
    assignee filter sums a few rows per project, whatever the number of users. Fillfactor 50, as that one."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=20)
    priority = models.CharField(max_length=10)
    slot = models.SmallIntegerField()
    issues = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "status", "priority", "slot"], name="status_tally_unique")
        ]

    def __str__(self) -> str:
        return f"project {self.project_id} {self.status}/{self.priority} slot {self.slot}"


class IdempotencyRecord(models.Model):
    """The stored answer to a POST sent with an ``Idempotency-Key`` (``issues.idempotency``), replayed to a retry
    of the same request by the same user within ``IDEMPOTENCY_TTL_SECONDS``; older rows are ignored, replaced
    when their key comes back, and deleted by ``manage.py purge_idempotency_keys``.

    ``request_hash`` is the SHA-256 of the query string, the media type and the body (JSON canonicalised, a
    multipart upload by its fields and file contents). ``response_body`` is the answer's JSON as text, not
    ``jsonb``, which would reorder its keys: a replay sends the same bytes.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"
