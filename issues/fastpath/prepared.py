"""Hot reads as prepared statements on PostgreSQL.

Two costs repeat on every request for the same few statements: the ORM building and compiling the queryset
(about 0.3 ms of Python for an issue with its subqueries) and PostgreSQL planning the statement (0.1–0.4 ms of
database CPU, as much as running it). ``PreparedGet`` compiles a one-row queryset once per process and
``PreparedRows`` a queryset per key (the bounds of a page, say); PostgreSQL plans each statement once per
connection (psycopg's ``prepare=True``); other databases run the queryset as usual. Every execution still goes
through Django's cursor wrapper: errors are translated, and queries are logged and counted like any other.
"""

import functools
from collections.abc import Callable, Hashable, Sequence
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
    """The first row of ``sql`` run as a prepared statement on PostgreSQL connection ``using``."""
    rows = fetch_all_prepared(sql, params, using=using, limit=1)
    return rows[0] if rows else None


def fetch_all_prepared(
    sql: str, params: Sequence[Any], *, using: str = "default", limit: int | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (at most ``limit``) run as a prepared statement on PostgreSQL connection ``using``.

    The connection's health check runs first, as it does for a cursor Django hands out."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = PreparingCursor(connection.connection)
    with _PreparedDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if limit is None else cursor.fetchmany(limit)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's query-logging wrapper, logging the statement as written (psycopg keeps no text of a prepared
    execution for Django to read back)."""

    def debug_sql(self, sql: Any = None, params: Any = None, use_last_executed_query: bool = False, many: bool = False):
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


class _Compiled:
    """A queryset compiled once: its SQL and parameters, and how the ORM turns one of its rows into an instance
    (the converters, the model's columns, the annotations)."""

    def __init__(self, queryset: QuerySet, using: str) -> None:
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        self.sql, self.params, self.model, self.using = sql, tuple(params), queryset.model, using
        self.converters = compiler.get_converters([column for column, _, _ in compiler.select])
        select_fields = compiler.klass_info["select_fields"]
        self.start = select_fields[0]
        self.attnames = [column.target.attname for column, _, _ in compiler.select[self.start : select_fields[-1] + 1]]
        self.annotations = list(compiler.annotation_col_map.items())

    def instance(self, row: Sequence[Any]) -> Model:
        if self.converters:  # as the ORM would apply them (compiler.apply_converters)
            row = list(row)
            for position, (functions, expression) in self.converters.items():
                for function in functions:
                    row[position] = function(row[position], expression, connections[self.using])
        instance = self.model.from_db(self.using, self.attnames, row[self.start : self.start + len(self.attnames)])
        for name, position in self.annotations:
            setattr(instance, name, row[position])
        return instance


class PreparedGet:
    """``build(value)`` returns a queryset matching at most one row, in which ``value`` (an int, the primary
    key say) is the only thing that changes from call to call; ``get(value)`` returns that row's instance,
    with its annotations, or raises the model's ``DoesNotExist``."""

    def __init__(self, build: Callable[[int], QuerySet]) -> None:
        self.build = build
        self._compiled: dict[str, tuple[_Compiled, int]] = {}

    def get(self, value: int, *, using: str = "default") -> Model:
        if connections[using].vendor != "postgresql":
            return self.build(value).using(using).get()
        if using not in self._compiled:
            compiled = _Compiled(self.build(MARKER).using(using), using)
            if compiled.params.count(MARKER) != 1:
                raise ValueError("PreparedGet: the queryset must carry the value exactly once in its parameters")
            self._compiled[using] = compiled, compiled.params.index(MARKER)
        compiled, marker_at = self._compiled[using]
        params = list(compiled.params)
        params[marker_at] = value
        row = fetch_prepared(compiled.sql, params, using=using)
        if row is None:
            raise compiled.model.DoesNotExist(f"{compiled.model._meta.object_name} matching query does not exist.")
        return compiled.instance(row)


class PreparedRows:
    """``build(*key)`` returns a queryset in which nothing changes for the same key (a page of a list, the
    key being its bounds); ``rows(*key)`` returns its instances, with their annotations (PostgreSQL only).

    The statements of the last ``keys`` keys stay compiled; psycopg keeps at most ``prepared_max`` (100)
    statements prepared per connection and deallocates the least recently used beyond that."""

    def __init__(self, build: Callable[..., QuerySet], *, keys: int = 64) -> None:
        self.build = build
        self._compiled = functools.lru_cache(maxsize=keys)(self._compile)

    def rows(self, *key: Hashable, using: str = "default") -> list[Model]:
        if connections[using].vendor != "postgresql":
            raise ValueError("PreparedRows runs prepared statements, which need PostgreSQL")
        compiled = self._compiled(using, key)
        return [compiled.instance(row) for row in fetch_all_prepared(compiled.sql, compiled.params, using=using)]

    def _compile(self, using: str, key: tuple[Hashable, ...]) -> _Compiled:
        return _Compiled(self.build(*key).using(using), using)
