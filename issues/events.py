"""Turn a before/after state of an issue into timeline events. Only services call this module."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from .models import DONE_STATUSES, EventType, Issue, IssueEvent

EXCERPT_LENGTH = 100

# The tracked fields of an issue and the event each one produces, in timeline order.
TRACKED_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", EventType.TITLE_CHANGED),
    ("description", EventType.DESCRIPTION_CHANGED),
    ("status", EventType.STATUS_CHANGED),
    ("priority", EventType.PRIORITY_CHANGED),
    ("assignee_id", EventType.ASSIGNEE_CHANGED),
)


@dataclass(frozen=True)
class Change:
    """One event to record: its type and details."""

    type: str
    details: dict[str, Any]


def snapshot(issue: Issue, label_names: Iterable[str]) -> dict[str, Any]:
    """The state of an issue that the timeline tracks."""
    state = {field: getattr(issue, field) for field, _ in TRACKED_FIELDS}
    state["labels"] = sorted(label_names, key=str.lower)
    return state


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The events that take an issue from ``before`` to ``after``; empty when nothing changed."""
    changes: list[Change] = []
    for field, event_type in TRACKED_FIELDS:
        old, new = before[field], after[field]
        if old == new:
            continue
        if event_type == EventType.DESCRIPTION_CHANGED:
            changes.append(Change(event_type, {}))
        else:
            changes.append(Change(event_type, {"from": old, "to": new}))
    old_labels = {name.lower(): name for name in before["labels"]}
    new_labels = {name.lower(): name for name in after["labels"]}
    added = sorted((new_labels[k] for k in new_labels.keys() - old_labels.keys()), key=str.lower)
    removed = sorted((old_labels[k] for k in old_labels.keys() - new_labels.keys()), key=str.lower)
    if added or removed:
        changes.append(Change(EventType.LABELS_CHANGED, {"added": added, "removed": removed}))
    return changes


# A datetime, or what stands for one: the bulk change passes True for "resolved_at is set" (fastpath/bulk.py).
_When = TypeVar("_When")


def resolved_at_after(
    old_status: str | None, new_status: str, old_resolved_at: _When | None, now: _When
) -> _When | None:
    """``resolved_at`` after a status change: set on entering resolved/closed from an open state,
    kept while moving between resolved and closed, cleared on reopening."""
    if new_status not in DONE_STATUSES:
        return None
    if old_status in DONE_STATUSES and old_resolved_at is not None:
        return old_resolved_at
    return now


def build_events(
    *, issue_id: int, changes: Iterable[Change], actor_id: int | None, source: str, timestamp: datetime
) -> list[IssueEvent]:
    """Unsaved IssueEvent rows for ``changes``; the caller saves them in its transaction."""
    return [
        IssueEvent(
            issue_id=issue_id,
            type=change.type,
            details=change.details,
            actor_id=actor_id,
            source=source,
            timestamp=timestamp,
        )
        for change in changes
    ]


def comment_excerpt(body: str) -> str:
    return body if len(body) <= EXCERPT_LENGTH else body[: EXCERPT_LENGTH - 1] + "…"
