"""Statements about the database session rather than the data: reachability, transaction-scoped advisory
locks and per-transaction time budgets. The ORM has no words for these."""

import time

from django.conf import settings
from django.db import connection


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
