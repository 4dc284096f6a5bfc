"""Statements about the database session rather than the data: reachability, transaction-scoped advisory
locks and per-transaction time budgets. The ORM has no words for these."""

import time

from django.conf import settings
from django.db import connection

# SQLSTATE of a lock wait that passed lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"
# Label deletion against label use (see issues/services/labels.py): every write that links labels to issues takes
# this transaction-level advisory lock SHARED before it locks any issue row; label_delete takes it EXCLUSIVE.
LABEL_USE_LOCK = 0x1AB_E15E
# Held (per transaction, per project: the second key is the project's id) by an import before it creates labels,
# so two imports into one project cannot deadlock on the label name index by creating the same labels in
# different orders across their batches; imports into different projects create different labels and do not wait.
IMPORT_LABEL_LOCK = 0x15_5E_1AB


def database_reachable() -> bool:
    """Whether the database answers a trivial statement (the health check)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return False
    return True


def advisory_xact_lock(key: int, *, shared: bool = False) -> None:
    """Wait for the transaction-scoped advisory lock ``key`` (bounded by the session's lock timeout)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [key])


def try_advisory_xact_lock(namespace: int, key: int, *, wait_seconds: float) -> bool:
    """Take the transaction-scoped advisory lock (``namespace``, ``key``), polling with backoff for at most
    ``wait_seconds`` (a try-lock, so the wait is bounded without touching ``lock_timeout``). False if not got."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.005
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [namespace, key])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def long_transaction_budget() -> None:
    """Give the current transaction the import's statement and lock timeouts (IMPORT_STATEMENT_TIMEOUT_MS)
    instead of a request's."""
    budget = f"{settings.IMPORT_STATEMENT_TIMEOUT_MS}ms"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)", [budget, budget]
        )


def hold_label_use_lock() -> None:
    """Take LABEL_USE_LOCK shared until the transaction ends. Call it before locking any issue row."""
    advisory_xact_lock(LABEL_USE_LOCK, shared=True)


def hold_import_label_locks(project_id: int) -> None:
    """LABEL_USE_LOCK shared and the imports' own IMPORT_LABEL_LOCK of the project, in one statement; in either
    order, as neither holder waits for anything the other's waiters hold."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s), pg_advisory_xact_lock(%s, %s)",
            [LABEL_USE_LOCK, IMPORT_LABEL_LOCK, int(project_id)],
        )


# Waits at most ``wait_ms`` (or the connection's lock_timeout when shorter) for every lock from here to the end
# of the transaction, then takes LABEL_USE_LOCK exclusive. The CTE is read before the lock is asked for, so the
# shorter timeout is in force for that wait.
_LABEL_USE_LOCK_EXCLUSIVE = (
    "WITH bounded AS MATERIALIZED (SELECT set_config('lock_timeout', "
    "CASE WHEN setting::bigint BETWEEN 1 AND %s THEN setting ELSE %s END, true) FROM pg_settings "
    "WHERE name = 'lock_timeout') SELECT pg_advisory_xact_lock(%s) FROM bounded"
)


def take_label_use_lock_exclusive(*, wait_ms: int) -> None:
    """Take LABEL_USE_LOCK exclusive, waiting at most ``wait_ms`` for it and for every later lock of the
    transaction (a longer wait raises the database's lock-timeout error, SQLSTATE LOCK_NOT_AVAILABLE)."""
    with connection.cursor() as cursor:
        cursor.execute(_LABEL_USE_LOCK_EXCLUSIVE, [wait_ms, str(wait_ms), LABEL_USE_LOCK])


def take_issue_numbers(project_id: int, count: int) -> list[int]:
    """The next ``count`` issue numbers of project ``project_id``, ascending, in one statement (``nextval`` of the
    project's sequence, ``issues.models.Project``): no lock is taken, so concurrent creators and imports never
    wait for each other nor collide."""
    from ..models import number_sequence_name

    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [number_sequence_name(project_id), count]
        )
        return sorted(row[0] for row in cursor.fetchall())
