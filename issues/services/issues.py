"""Issues: create one, and change one under optimistic locking (version-checked, one event per changed field)."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from hooks.events import ISSUE_CREATED, ISSUE_UPDATED
from hooks.outbox import record_issue_event

from .. import events
from ..access import Access, Action, user_can_see
from ..exceptions import AssigneeCannotSee, VersionConflict
from ..fastpath.prepared import PreparedGet
from ..fastpath.session import hold_label_use_lock, take_issue_numbers
from ..fastpath.subqueries import LabelNamesJoined, ProjectKey
from ..models import LABEL_SEPARATOR, EventType, Issue, IssueEvent, Priority, Project, Source, Status
from .common import User, actor_id, remember_labels
from .labels import labels_ensure

UPDATABLE_FIELDS = ("title", "description", "status", "priority", "assignee")


@transaction.atomic
def issue_create(
    *,
    actor: User,
    project: Project,
    title: str,
    description: str = "",
    status: str = Status.OPEN,
    priority: str = Priority.MEDIUM,
    assignee: Any = None,
    labels: Iterable[str] = (),
    source: str = Source.API,
) -> Issue:
    """Create an issue in ``project`` with the project's next number, its labels (missing ones created in the
    project) and its ``created`` event. Who may create it there is the caller's business (``issues.access``)."""
    labels = list(labels)
    if labels:
        hold_label_use_lock()
    now = timezone.now()
    check_assignee(assignee, project.pk, project.key)
    (number,) = take_issue_numbers(project.pk, 1)
    issue = Issue.objects.create(
        project=project,
        number=number,
        title=title,
        description=description,
        status=status,
        priority=priority,
        assignee=assignee,
        reporter_id=actor_id(actor),
        created_at=now,
        updated_at=now,
        resolved_at=events.resolved_at_after(None, status, None, now),
    )
    label_objs = labels_ensure(project.pk, labels)
    if label_objs:
        issue.labels.add(*label_objs)
    IssueEvent.objects.create(
        issue=issue, type=EventType.CREATED, actor_id=actor_id(actor), source=source, timestamp=now, details={}
    )
    remember_labels(issue, label_objs)
    record_issue_event(event=ISSUE_CREATED, issue_ids=[issue.pk], actor=actor, source=source, now=now)
    return issue


@transaction.atomic
def issue_update(
    *,
    issue_id: int,
    actor: User,
    expected_version: int | None,
    changes: dict[str, Any],
    source: str = Source.API,
    access: Access | None = None,
) -> tuple[Issue, bool]:
    """Apply ``changes`` (fields of UPDATABLE_FIELDS and ``labels``) to an issue.

    Returns ``(issue, changed)``. A change that changes nothing leaves the version alone.
    Raises ``Issue.DoesNotExist``, or ``VersionConflict`` when ``expected_version`` (if given) is not
    the current version: the row is locked, compared, and written with a compare-and-set on the version.
    A change of ``labels`` holds LABEL_USE_LOCK (shared), taken before the row lock. With ``access`` (the
    caller's), an issue the caller cannot see is not found (and not locked), and one in a project where the
    caller may not write is a 403 (``Access.require``), checked before anything is compared or written.
    """
    if "labels" in changes:
        hold_label_use_lock()
    visible = None if access is None else access.visible_ids
    issue: Issue
    if expected_version is None:
        locked = Issue.objects.select_for_update(of=("self",)).annotate(project_key_value=ProjectKey())
        if visible is not None:
            locked = locked.filter(project_id__any=visible)
        issue = locked.get(pk=issue_id)
        if access is not None:
            access.require(issue.project_id, Action.WRITE)
        # Read after the lock is held, in a statement of its own: it sees every change committed before.
        current_names = [label.name for label in issue.labels.all()]
    else:
        # One statement locks the row and reads its label names. The names come from the snapshot taken
        # when the statement started; if the row changed while the statement waited for the lock, the
        # version changed too (every label change bumps it in the same transaction), so the check below
        # refuses the update before the names are used.
        issue = _issue_locked_with_labels(issue_id, visible)
        if access is not None:
            access.require(issue.project_id, Action.WRITE)
        if issue.version != expected_version:
            raise VersionConflict(issue, expected_version)
        current_names = issue.label_names()
    before = events.snapshot(issue, current_names)

    new_assignee = changes.get("assignee")
    if new_assignee is not None and new_assignee.pk != issue.assignee_id:
        check_assignee(new_assignee, issue.project_id, issue.project_key)
    new_labels = None
    if "labels" in changes:
        new_labels = labels_ensure(issue.project_id, changes["labels"])
    for field in UPDATABLE_FIELDS:
        if field in changes:
            setattr(issue, field, changes[field])
    new_names = current_names if new_labels is None else [label.name for label in new_labels]
    after = events.snapshot(issue, new_names)
    issue.label_names_joined = LABEL_SEPARATOR.join(new_names)  # type: ignore[attr-defined]  # label_names() reads it

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
        events.build_events(issue_id=issue.pk, changes=diff, actor_id=actor_id(actor), source=source, timestamp=now)
    )
    record_issue_event(event=ISSUE_UPDATED, issue_ids=[issue.pk], actor=actor, source=source, now=now)
    return issue, True


def check_assignee(user: Any, project_id: int, project_key: str) -> None:
    """Raise ``AssigneeCannotSee`` when ``user`` (not None) cannot see the project (``issues.access``)."""
    if user is not None and not user_can_see(user, project_id):
        raise AssigneeCannotSee(user.pk, project_key)


def _issue_locked_with_labels(issue_id: int, visible: list[int] | None) -> Issue:
    """The issue, locked (``SELECT … FOR UPDATE``), with its project's key and label names joined in, among the
    projects ``visible`` (all when None). Raises ``DoesNotExist``."""
    if visible is None:
        return _ISSUE_LOCKED_WITH_LABELS_ALL.get(issue_id)
    return _ISSUE_LOCKED_WITH_LABELS.get(issue_id, visible)


def _locked(issue_id: int) -> Any:
    return (
        Issue.objects.select_for_update()
        .annotate(project_key_value=ProjectKey(), label_names_joined=LabelNamesJoined(separator=LABEL_SEPARATOR))
        .filter(pk=issue_id)
    )


# Compiled once, prepared per connection (the PATCH path runs it on every request); with the caller's scope, and
# for staff and internal callers without.
_ISSUE_LOCKED_WITH_LABELS = PreparedGet(
    lambda issue_id, projects: _locked(issue_id).filter(project_id__any=[projects]), arity=2
)
_ISSUE_LOCKED_WITH_LABELS_ALL = PreparedGet(_locked)
