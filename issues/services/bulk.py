"""Bulk status changes: all or nothing, rows locked in id order, a constant number of statements."""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.exceptions import DomainError

from .. import events
from ..fastpath.bulk import BulkChange, lock_issue_states, write_status_changes
from ..models import Source
from .common import User, actor_id


@dataclass
class BulkItem:
    """One item of a bulk status change, as parsed from the request. ``errors`` holds what the parser
    found wrong with it (field → messages); the service adds unknown ids."""

    index: int
    id: Any
    status: Any
    version: int | None = None
    errors: dict[str, list[str]] = dataclass_field(default_factory=dict)


class BulkInvalid(DomainError):
    """Some items are invalid; ``errors`` lists every one of them as ``{"index", "id", "errors"}``: a 400."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid item(s); nothing was changed.")
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": self.errors}


class BulkConflict(DomainError):
    """Some items carry a stale version; ``conflicts`` lists them as ``{"id", "expected", "current"}``: a 409."""

    status_code = 409
    code = "version_conflict"

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(conflicts)} item(s) carry a stale version; nothing was changed.")
        self.conflicts = conflicts

    def body(self) -> dict[str, Any]:
        return {**super().body(), "conflicts": self.conflicts}


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
    current = lock_issue_states(wanted_ids)
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
        write_status_changes(changes, actor_id=actor_id(actor), source=source, now=now)
    return {"updated": len(changes), "unchanged": len(items) - len(changes), "results": results}
