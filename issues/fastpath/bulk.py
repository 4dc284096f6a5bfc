"""The bulk status change's statements (find the issues named by key, lock, update, record the events), written over
arrays: a fixed, small number of parameters whatever the number of items (Django would compile, and psycopg send,
one parameter per id)."""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from psycopg import sql

from ..models import EventType, Issue, IssueEvent, Project

# One changed item: (id, old status, new status, old resolved_at, new resolved_at).
BulkChange = tuple[int, str, str, Any, Any]

# A locked issue: (status, version, resolved, project id).
IssueState = tuple[str, int, bool | None, int]


def lock_issue_states(ids: Sequence[int], visible: Sequence[int] | None) -> dict[int, IssueState]:
    """Lock the issues ``ids`` of the projects ``visible`` (None: of every project) in id order (``FOR UPDATE``)
    and return ``{id: (status, version, resolved, project_id)}``, ``resolved`` being True when ``resolved_at`` is
    set, else None (only whether it is set matters: the UPDATE keeps, sets or clears it in SQL). An issue of
    another project is neither locked nor returned: for the caller it does not exist."""
    scoped = sql.SQL("" if visible is None else " AND project_id = ANY(%s)")
    query = sql.SQL(
        "SELECT id, status, version, resolved_at IS NOT NULL, project_id FROM {} WHERE id = ANY(%s){} "
        "ORDER BY id FOR UPDATE"
    ).format(sql.Identifier(Issue._meta.db_table), scoped)
    params: list[Any] = [list(ids)] if visible is None else [list(ids), list(visible)]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {
            pk: (status, version, resolved or None, project_id)
            for pk, status, version, resolved, project_id in cursor.fetchall()
        }


def issue_ids_by_keys(keys: Sequence[tuple[str, int]], visible: Sequence[int] | None) -> dict[tuple[str, int], int]:
    """``{(project key, number): issue id}`` for those of ``keys`` (upper-case keys) that name an issue of the
    projects ``visible`` (None: of every project), in one statement whatever the number of keys. A key and a number
    never change (``Issue.frozen_project_number``), so what this reads stays true without a lock."""
    scoped = sql.SQL("" if visible is None else " WHERE p.id = ANY(%s)")
    query = sql.SQL(
        "SELECT k.key, k.number, i.id FROM unnest(%s::text[], %s::bigint[]) AS k(key, number) "
        "JOIN {} AS p ON p.key = k.key JOIN {} AS i ON i.project_id = p.id AND i.number = k.number{}"
    ).format(sql.Identifier(Project._meta.db_table), sql.Identifier(Issue._meta.db_table), scoped)
    params: list[Any] = [[key for key, _ in keys], [number for _, number in keys]]
    if visible is not None:
        params.append(list(visible))
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {(key, number): pk for key, number, pk in cursor.fetchall()}


def write_status_changes(changes: list[BulkChange], *, actor_id: Any, source: str, now: Any) -> None:
    """The issues' UPDATE and the events' INSERT as two statements over arrays (``unnest``)."""
    ids = [change[0] for change in changes]
    old_statuses = [change[1] for change in changes]
    new_statuses = [change[2] for change in changes]
    # resolved_at: 1 = set to now, 2 = clear, 0 = keep (see events.resolved_at_after)
    resolved = [1 if new is now else 2 if new is None else 0 for _, _, _, _, new in changes]
    update = sql.SQL(
        "UPDATE {} AS i SET status = v.status, "
        "resolved_at = CASE v.resolved WHEN 1 THEN %s WHEN 2 THEN NULL ELSE i.resolved_at END, "
        "version = i.version + 1, updated_at = %s "
        "FROM unnest(%s::bigint[], %s::text[], %s::smallint[]) AS v(id, status, resolved) WHERE i.id = v.id"
    ).format(sql.Identifier(Issue._meta.db_table))
    insert = sql.SQL(
        "INSERT INTO {} (issue_id, type, timestamp, actor_id, source, details) "
        "SELECT v.id, %s, %s, %s, %s, jsonb_build_object('from', v.old, 'to', v.new) "
        "FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS v(id, old, new, n) ORDER BY v.n"
    ).format(sql.Identifier(IssueEvent._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(update, [now, now, ids, new_statuses, resolved])
        cursor.execute(insert, [EventType.STATUS_CHANGED.value, now, actor_id, source, ids, old_statuses, new_statuses])
