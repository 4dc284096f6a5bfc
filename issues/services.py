"""Every write of the tracker. Each function writes its rows and their timeline events in one transaction."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from . import events
from .exceptions import VersionConflict
from .models import Comment, EventType, Issue, IssueEvent, Label, Priority, Source, Status

UPDATABLE_FIELDS = ("title", "description", "status", "priority", "assignee")

User = AbstractBaseUser | AnonymousUser | None


def _actor_id(actor: User) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


def labels_ensure(names: Iterable[str]) -> list[Label]:
    """The labels named ``names`` (matched ignoring case), creating the missing ones.

    Race-safe: concurrent callers creating ``Bug`` and ``bug`` end with one label, because the insert
    skips rows that hit the case-insensitive unique index, and names are inserted in a fixed order.
    """
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name.lower(), name)
    if not wanted:
        return []
    ordered = sorted(wanted.items())
    Label.objects.bulk_create([Label(name=name) for _, name in ordered], ignore_conflicts=True)
    found = {label.lname: label for label in Label.objects.annotate(lname=Lower("name")).filter(lname__in=list(wanted))}
    return [found[key] for key, _ in ordered]


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
    """
    issue = Issue.objects.select_for_update().get(pk=issue_id)
    if expected_version is not None and issue.version != expected_version:
        raise VersionConflict(issue, expected_version)
    current_labels = list(issue.labels.all())
    before = events.snapshot(issue, (label.name for label in current_labels))

    new_labels = current_labels
    if "labels" in changes:
        new_labels = labels_ensure(changes["labels"])
    for field in UPDATABLE_FIELDS:
        if field in changes:
            setattr(issue, field, changes[field])
    after = events.snapshot(issue, (label.name for label in new_labels))

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
    if any(change.type == EventType.LABELS_CHANGED for change in diff):
        issue.labels.set(new_labels)
    IssueEvent.objects.bulk_create(
        events.build_events(issue_id=issue.pk, changes=diff, actor_id=_actor_id(actor), source=source, timestamp=now)
    )
    return issue, True


@transaction.atomic
def comment_create(*, issue_id: int, author: User, body: str) -> Comment:
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
        source=Source.API,
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
    """Rename or recolour a label; issues keep it (no timeline event). Raises ``LabelNameTaken``."""
    if name is not None:
        label.name = name
    if color is not None:
        label.color = color
    try:
        with transaction.atomic():
            label.save(update_fields=["name", "color"])
    except IntegrityError as exc:
        raise LabelNameTaken(name) from exc
    return label


@transaction.atomic
def label_delete(*, label: Label, actor: User, source: str = Source.API) -> int:
    """Delete a label. Each issue that carried it gets a ``labels_changed`` event and a new version,
    in a constant number of queries. Returns the number of issues changed."""
    issue_ids = list(Issue.objects.select_for_update().filter(labels=label).order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    if issue_ids:
        Issue.objects.filter(pk__in=issue_ids).update(version=F("version") + 1, updated_at=now)
        IssueEvent.objects.bulk_create(
            IssueEvent(
                issue_id=issue_id,
                type=EventType.LABELS_CHANGED,
                details={"added": [], "removed": [label.name]},
                actor_id=_actor_id(actor),
                source=source,
                timestamp=now,
            )
            for issue_id in issue_ids
        )
    label.delete()
    return len(issue_ids)
