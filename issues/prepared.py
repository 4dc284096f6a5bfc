"""Hot reads as prepared statements on PostgreSQL.

Two costs repeat on every request for the same few statements: the ORM building and compiling the queryset
(about 0.3 ms of Python for an issue with its subqueries) and PostgreSQL planning the statement (0.1–0.4 ms of
database CPU, as much as running it). ``PreparedGet`` compiles a one-row queryset once per process and has
PostgreSQL plan it once per connection (psycopg's ``prepare=True``); other databases run the queryset as usual.
Every execution still goes through Django's cursor wrapper: errors are translated, and queries are logged
and counted like any other.
"""

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Model, QuerySet

# The value the queryset is built with, then replaced by the real one in the compiled parameters.
MARKER = -7_340_129_551


class PreparingCursor(psycopg.Cursor):
    """A psycopg cursor with server-side binding that prepares every statement it runs (once per connection)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True, **kwargs)


def fetch_prepared(sql: str, params: Sequence[Any], *, using: str = "default") -> tuple[Any, ...] | None:
    """The first row of ``sql`` run as a prepared statement on PostgreSQL connection ``using``.

    The connection's health check runs first, as it does for a cursor Django hands out."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = PreparingCursor(connection.connection)
    with _PreparedDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's query-logging wrapper, logging the statement as written (psycopg keeps no text of a prepared
    execution for Django to read back)."""

    def debug_sql(self, sql: Any = None, params: Any = None, use_last_executed_query: bool = False, many: bool = False):
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


class PreparedGet:
    """``build(value)`` returns a queryset matching at most one row, in which ``value`` (an int, the primary
    key say) is the only thing that changes from call to call; ``get(value)`` returns that row's instance,
    with its annotations, or raises the model's ``DoesNotExist``."""

    def __init__(self, build: Callable[[int], QuerySet]) -> None:
        self.build = build
        self._compiled: dict[str, Any] = {}

    def get(self, value: int, *, using: str = "default") -> Model:
        if connections[using].vendor != "postgresql":
            return self.build(value).using(using).get()
        if using not in self._compiled:
            self._compiled[using] = self._compile(using)
        sql, params, marker_at, model, attnames, start, annotations, converters = self._compiled[using]
        params = list(params)
        params[marker_at] = value
        row = fetch_prepared(sql, params, using=using)
        if row is None:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if converters:  # as the ORM would apply them (compiler.apply_converters)
            row = list(row)
            for position, (functions, expression) in converters.items():
                for function in functions:
                    row[position] = function(row[position], expression, connections[using])
        instance = model.from_db(using, attnames, row[start : start + len(attnames)])
        for name, position in annotations:
            setattr(instance, name, row[position])
        return instance

    def _compile(self, using: str) -> tuple[Any, ...]:
        queryset = self.build(MARKER).using(using)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        if list(params).count(MARKER) != 1:
            raise ValueError("PreparedGet: the queryset must carry the value exactly once in its parameters")
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        select_fields = compiler.klass_info["select_fields"]
        start = select_fields[0]
        attnames = [column.target.attname for column, _, _ in compiler.select[start : select_fields[-1] + 1]]
        annotations = list(compiler.annotation_col_map.items())
        marker_at = list(params).index(MARKER)
        return sql, tuple(params), marker_at, queryset.model, attnames, start, annotations, converters
