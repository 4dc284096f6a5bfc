"""Bulk status changes: all or nothing, rows locked in id order, a constant number of statements."""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.exceptions import DomainError
from hooks.events import ISSUE_UPDATED
from hooks.outbox import record_issue_event

from .. import events
from ..access import Access, Action
from ..fastpath.bulk import BulkChange, issue_ids_by_keys, lock_issue_states, write_status_changes
from ..models import Source
from .common import User, actor_id


@dataclass
class BulkItem:
    """One item of a bulk status change, as parsed from the request. ``id`` is what the client sent (an issue id,
    or a key such as ``web-42``); ``key`` is that key as ``(KEY, number)`` when it was one. ``errors`` holds what
    the parser found wrong with it (field → messages); the service adds unknown ids, duplicates that only the
    database can tell (an id and a key naming the same issue) and issues the caller may not change in bulk."""

    index: int
    id: Any
    status: Any
    version: int | None = None
    errors: dict[str, list[str]] = dataclass_field(default_factory=dict)
    key: tuple[str, int] | None = None

    def named(self) -> str:
        """The issue as the client named it, for messages: ``42`` or ``WEB-42``."""
        return str(self.id) if self.key is None else f"{self.key[0]}-{self.key[1]}"


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


def duplicate_message(item: BulkItem, first_index: int) -> list[str]:
    """The error of an item naming the issue an earlier item named (the parser's and the service's alike)."""
    return [f"Duplicate id: issue {item.named()} is already item {first_index}."]


@transaction.atomic
def issue_bulk_set_status(
    *, actor: User, items: Sequence[BulkItem], access: Access, source: str = Source.BULK
) -> dict[str, Any]:
    """Set the status of many issues at once, all or nothing, in a constant number of queries.

    Only the issues of the projects ``access`` sees are looked at: any other is reported exactly as an id
    that names no issue ("No issue has id N."), so the answer tells nothing about it. An issue the caller
    sees but whose project it does not maintain is an item error too. Items may name issues by key
    (``WEB-42``): the keys are looked up in one statement, and an id and a key naming the same issue are
    duplicates. The results (and conflicts) name issues by id.

    The rows are locked in id order (``SELECT … FOR UPDATE ORDER BY id``), so overlapping bulks wait for
    each other instead of deadlocking. Raises ``BulkInvalid`` when any item is invalid, names an unknown
    issue or one the caller may not change in bulk, ``BulkConflict`` when any item's version is stale;
    nothing is written then. Items already in their target status are left alone (no version bump, no
    event). Every changed issue gets version + 1, ``resolved_at`` per ``events.resolved_at_after`` and one
    ``status_changed`` event. Returns ``{"updated", "unchanged", "results": [{"id", "status", "version"}]}``
    in request order.
    """
    visible = access.visible_ids
    checkable = [item for item in items if "id" not in item.errors]
    keys = sorted({item.key for item in checkable if item.key is not None})
    by_key = issue_ids_by_keys(keys, visible) if keys else {}
    # The issue id of each checkable item, None for a key that names no issue the caller can see.
    issue_ids: dict[int, int | None] = {
        item.index: item.id if item.key is None else by_key.get(item.key) for item in checkable
    }
    current = lock_issue_states(sorted({pk for pk in issue_ids.values() if pk is not None}), visible)
    first_index: dict[int, int] = {}  # issue id → index of the first item naming it
    maintains: dict[int, bool] = {}  # project id → whether the caller may change its issues in bulk
    for item in checkable:
        issue_id = issue_ids[item.index]
        if issue_id is None or issue_id not in current:
            what = "id" if item.key is None else "key"
            item.errors["id"] = [f"No issue has {what} {item.named()}."]
        elif issue_id in first_index:  # the parser saw repeats of one form; an id and a key meet only here
            item.errors["id"] = duplicate_message(item, first_index[issue_id])
        else:
            first_index[issue_id] = item.index
            project_id = current[issue_id][3]
            if project_id not in maintains:
                maintains[project_id] = access.can(project_id, Action.MANAGE)
            if not maintains[project_id]:
                item.errors["id"] = [
                    f"You need the maintainer role in project {_project_key(access, project_id)} "
                    "to change this issue in bulk."
                ]
    invalid = [{"index": item.index, "id": item.id, "errors": item.errors} for item in items if item.errors]
    if invalid:
        raise BulkInvalid(invalid)
    # Every item is valid now: each names a distinct issue the caller maintains, found under its first index.
    issue_of = {index: issue_id for issue_id, index in first_index.items()}
    targets = [(item, issue_of[item.index]) for item in items]
    conflicts = [
        {"id": issue_id, "expected": item.version, "current": current[issue_id][1]}
        for item, issue_id in targets
        if item.version is not None and item.version != current[issue_id][1]
    ]
    if conflicts:
        raise BulkConflict(conflicts)

    now = timezone.now()
    resolved_at_after = events.resolved_at_after
    changes: list[BulkChange] = []
    results = []
    for item, issue_id in targets:
        old_status, version, old_resolved_at, _project_id = current[issue_id]
        if old_status == item.status:
            results.append({"id": issue_id, "status": old_status, "version": version})
            continue
        resolved_at = resolved_at_after(old_status, item.status, old_resolved_at, now)
        changes.append((issue_id, old_status, item.status, old_resolved_at, resolved_at))
        results.append({"id": issue_id, "status": item.status, "version": version + 1})

    if changes:
        write_status_changes(changes, actor_id=actor_id(actor), source=source, now=now)
        # One issue.updated per changed issue, all in one INSERT … SELECT.
        record_issue_event(
            event=ISSUE_UPDATED, issue_ids=[change[0] for change in changes], actor=actor, source=source, now=now
        )
    return {"updated": len(changes), "unchanged": len(items) - len(changes), "results": results}


def _project_key(access: Access, project_id: int) -> str:
    """The key of a project the caller sees but does not maintain (so not staff: ``access.projects`` has it)."""
    found = access.projects.get(project_id)
    return found[0] if found else str(project_id)
