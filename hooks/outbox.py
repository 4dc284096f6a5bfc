"""The outbox: webhook events written in the transaction of the change that causes them.

Each function here is one ``INSERT … SELECT``: one delivery row per active webhook of the project subscribed to the
event (``events`` holds the type or ``*``), none when there is none, so a write to a project without webhooks pays
one statement that inserts nothing. The payload is built by that statement from the rows as the write left them
(the issue as ``IssueSerializer`` renders it, the write's timeline events as the timeline renders them), so the
request does no more work when webhooks exist than when they do not. The same statement notifies the workers (a
PostgreSQL ``NOTIFY``, delivered at the commit): with a broker, a relay thread in each worker hands the new rows to
the broker (``hooks.relay``), so the request publishes nothing; without one, this process delivers them after the
commit (``transaction.on_commit``). A rolled-back or refused write sends nothing, and a committed one whose hand-off
fails (broker down, process killed, no worker listening) is sent by the sweep (``hooks.tasks.sweep``).
"""

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from issues.models import Issue, IssueEvent, Label, Project

from . import relay
from .models import ALL_EVENTS, DeliveryStatus, Event, Webhook, WebhookDelivery


def _iso(column: str) -> str:
    """SQL rendering a timestamptz as ``iso_datetime`` does in Python (UTC, ``Z``, microseconds only when any)."""
    return (
        f"(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN date_part('microseconds', {column})::bigint %% 1000000 = 0 THEN '' "
        f"ELSE to_char({column} AT TIME ZONE 'UTC', '.US') END || 'Z')"
    )


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "delivery": quote(WebhookDelivery._meta.db_table),
        "webhook": quote(Webhook._meta.db_table),
        "issue": quote(Issue._meta.db_table),
        "project": quote(Project._meta.db_table),
        "label": quote(Label._meta.db_table),
        "issue_labels": quote(Issue.labels.through._meta.db_table),
        "event": quote(IssueEvent._meta.db_table),
        "user": quote(get_user_model()._meta.db_table),
    }


@cache
def _issue_sql() -> str:
    t = _tables()
    labels = (
        f'COALESCE((SELECT jsonb_agg(l.name ORDER BY lower(l.name) COLLATE "C", l.name COLLATE "C") '
        f"FROM {t['label']} l JOIN {t['issue_labels']} il ON il.label_id = l.id WHERE il.issue_id = i.id), "
        "'[]'::jsonb)"
    )
    issue = (
        "jsonb_build_object('id', i.id, 'project', p.key, 'number', i.number, 'key', p.key || '-' || i.number, "
        "'title', i.title, 'description', i.description, 'status', i.status, 'priority', i.priority, "
        f"'assignee', i.assignee_id, 'reporter', i.reporter_id, 'labels', {labels}, 'version', i.version, "
        f"'created_at', {_iso('i.created_at')}, 'updated_at', {_iso('i.updated_at')}, "
        f"'resolved_at', {_iso('i.resolved_at')})"
    )
    changes = (
        "COALESCE((SELECT jsonb_agg(jsonb_build_object('id', e.id, 'type', e.type, "
        f"'timestamp', {_iso('e.timestamp')}, 'actor', CASE WHEN u.id IS NULL THEN NULL ELSE "
        "jsonb_build_object('id', u.id, 'username', u.username) END, 'source', e.source, 'details', e.details) "
        f"ORDER BY e.id) FROM {t['event']} e LEFT JOIN {t['user']} u ON u.id = e.actor_id "
        "WHERE e.issue_id = i.id AND e.timestamp = %(now)s), '[]'::jsonb)"
    )
    return (
        f"INSERT INTO {t['delivery']} (id, webhook_id, event, payload, status, attempts, error, created_at, "
        "next_attempt_at) "
        "SELECT gen_random_uuid(), w.id, %(event)s, jsonb_build_object('type', %(event)s, 'timestamp', %(stamp)s, "
        f"'data', jsonb_build_object('project', p.key, 'issue', {issue}, 'changes', {changes}, "
        "'actor', %(actor)s::jsonb, 'source', %(source)s)), %(pending)s, 0, '', %(now)s, %(now)s "
        f"FROM {t['issue']} i JOIN {t['project']} p ON p.id = i.project_id "
        f"JOIN {t['webhook']} w ON w.project_id = i.project_id AND w.active "
        "AND w.events && ARRAY[%(event)s, %(all)s]::varchar[] "
        "WHERE i.id = ANY(%(ids)s::bigint[]) ORDER BY i.id, w.id RETURNING id"
    )


@cache
def _record_sql() -> str:
    t = _tables()
    return (
        f"INSERT INTO {t['delivery']} (id, webhook_id, event, payload, status, attempts, error, created_at, "
        "next_attempt_at) "
        "SELECT gen_random_uuid(), w.id, %(event)s, jsonb_build_object('type', %(event)s, 'timestamp', %(stamp)s, "
        "'data', jsonb_build_object('project', p.key) || %(data)s::jsonb), %(pending)s, 0, '', %(now)s, %(now)s "
        f"FROM {t['webhook']} w JOIN {t['project']} p ON p.id = w.project_id "
        "WHERE w.project_id = %(project)s AND w.active AND w.events && ARRAY[%(event)s, %(all)s]::varchar[] "
        "ORDER BY w.id RETURNING id"
    )


def _stamp(now: datetime) -> str:
    from issues.serializers.issues import iso_datetime

    return iso_datetime(now) or ""


def actor_ref(actor: Any) -> dict[str, Any] | None:
    """``{"id", "username"}`` of a user, None for no one (or an anonymous user)."""
    if actor is None or not getattr(actor, "pk", None):
        return None
    return {"id": actor.pk, "username": actor.get_username()}


def _insert(sql: str, params: dict[str, Any]) -> list[UUID]:
    params = {**params, "pending": DeliveryStatus.PENDING.value, "all": ALL_EVENTS}
    with connection.cursor() as cursor:
        # The same statement notifies the workers' relay (``hooks.relay``): PostgreSQL delivers a notification at
        # the commit only, one per transaction and channel however many rows, and none for a rollback.
        cursor.execute(f"WITH queued AS ({sql}) SELECT id, pg_notify('{relay.CHANNEL}', '') FROM queued", params)
        ids = [row[0] for row in cursor.fetchall()]
    if ids and settings.CELERY_TASK_ALWAYS_EAGER:  # no broker, no relay: this process delivers after the commit
        from .dispatch import hand_off

        transaction.on_commit(lambda: hand_off(ids))
    return ids


def record_issue_event(*, event: str, issue_ids: Sequence[int], actor: Any, source: str, now: datetime) -> list[UUID]:
    """Queue ``event`` (``issue.created|updated|commented``) for each issue of ``issue_ids``, to every subscribed
    webhook of its project, in the caller's transaction: one statement. ``now`` is the write's timestamp: the
    timeline events of each issue stamped with it are the payload's ``changes``. Returns the deliveries' ids."""
    params = {
        "event": event,
        "ids": list(issue_ids),
        "now": now,
        "stamp": _stamp(now),
        "actor": json.dumps(actor_ref(actor)),
        "source": str(source),
    }
    return _insert(_issue_sql(), params)


def record(project_id: int, event_type: str, data: dict[str, Any], *, now: datetime | None = None) -> list[UUID]:
    """Queue an event with this ``data`` (``project``, the key, is added) to every subscribed active webhook of
    the project, in the caller's transaction: one statement. Returns the deliveries' ids."""
    now = now or timezone.now()
    params = {
        "event": event_type,
        "project": project_id,
        "now": now,
        "stamp": _stamp(now),
        "data": json.dumps(data, default=str),
    }
    return _insert(_record_sql(), params)


def record_import(project_id: int, actor: Any, result_counts: dict[str, Any], *, source: str = "import") -> list[UUID]:
    """``issues.imported``: one event per import, with its counts (``{"created": n, ...}``), not one per row. Call
    it inside the import's transaction, after its rows are written."""
    data = {"counts": dict(result_counts), "actor": actor_ref(actor), "source": source}
    return record(project_id, Event.ISSUES_IMPORTED, data)
