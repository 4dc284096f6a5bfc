"""Labels: find or create them race-free, create, rename, recolour and delete them (with the events of the issues
that carried them)."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework.exceptions import APIException

from api.exceptions import DomainError
from hooks.events import ISSUE_UPDATED
from hooks.outbox import record_issue_event

from ..fastpath.session import LOCK_NOT_AVAILABLE, take_label_use_lock_exclusive
from ..models import EventType, Issue, IssueEvent, Label, Source
from .common import User, actor_id

# Label deletion against label use (LABEL_USE_LOCK, issues/fastpath/session.py). Every
# write that links labels to issues (issue create with labels, PATCH with labels, PUT labels, the CSV import, the
# admin's saves through the same services) takes this transaction-level advisory lock SHARED, before it locks any
# issue row; label_delete takes it EXCLUSIVE before it locks anything. So label users never wait on one another,
# and a deletion starts only when no write that links labels is in flight and none starts until it commits: no
# link to a label being deleted (no foreign-key violation), no link removed without its event, and a label that
# labels_ensure found stays there until the transaction ends.

# How long a deletion waits, for the lock and for the rows it locks, before it gives up (LabelBusy, a 503): an
# import holds the lock shared to its end, and label users that arrive meanwhile queue behind the deletion.
LABEL_DELETE_WAIT_MS = 2_000
LABELS_ENSURE_ATTEMPTS = 3


class LabelsChanged(APIException):
    """A label named in the request kept vanishing while it was being found (renamed away each time): a 409."""

    status_code = 409
    default_detail = "The labels changed while this request used them; nothing was written. Try again."
    default_code = "concurrent_change"


def labels_ensure(project_id: int, names: Iterable[str]) -> list[Label]:
    """The labels of project ``project_id`` named ``names`` (matched ignoring case), creating the missing ones.
    Callers that link the labels to issues hold LABEL_USE_LOCK (``hold_label_use_lock``), so none of them is deleted
    meanwhile.

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
        Label.objects.bulk_create(
            [Label(project_id=project_id, name=name) for _, name in missing], ignore_conflicts=True
        )
        lnames = [key for key, _ in missing]
        labels = Label.objects.annotate(lname=Lower("name")).filter(project_id=project_id, lname__in=lnames)
        found.update((label.lname, label) for label in labels)
        if len(found) == len(wanted):
            return [found[key] for key in sorted(wanted)]
    raise LabelsChanged()


class LabelNameTaken(DomainError):
    """Another label of the project already has this name (ignoring case): a 400 on ``name``."""

    def body(self) -> dict[str, Any]:
        return {"name": ["A label with this name already exists in this project."]}


def label_create(*, project_id: int, name: str, color: str | None = None) -> Label:
    """Create a label in project ``project_id``. Raises ``LabelNameTaken`` when the name exists there ignoring
    case."""
    label = Label(project_id=project_id, name=name)
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


class LabelBusy(DomainError):
    """A deletion could not take its locks within LABEL_DELETE_WAIT_MS (an import using labels, say): a 503 with
    Retry-After."""

    status_code = 503
    code = "label_busy"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(settings.DB_RETRY_AFTER_SECONDS)}


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
            return _label_delete_locked(label.pk, actor=actor, source=source)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise LabelBusy(
                "The label is in use by a change still in progress (an import, say); it was not deleted. "
                "Try again in a moment."
            ) from exc
        raise


def _label_delete_locked(label_id: int, *, actor: User, source: str) -> int:
    take_label_use_lock_exclusive(wait_ms=LABEL_DELETE_WAIT_MS)
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
                actor_id=actor_id(actor),
                source=source,
                timestamp=now,
            )
            for issue_id in issue_ids
        )
    label.delete()
    if issue_ids:
        # One issue.updated per issue that lost the label (its labels_changed event), after the links are gone, so
        # that each payload shows the issue as the write left it.
        record_issue_event(event=ISSUE_UPDATED, issue_ids=issue_ids, actor=actor, source=source, now=now)
    return len(issue_ids)
