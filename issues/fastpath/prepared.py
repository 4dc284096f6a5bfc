"""Hot reads as prepared statements.

Two costs repeat on every request for the same few statements: the ORM building and compiling the queryset,
and PostgreSQL planning the statement (measured in docs/performance.md). ``PreparedGet`` compiles a one-row
queryset once per process and ``PreparedRows`` a queryset per key (the bounds of a page, say); PostgreSQL plans
each statement once per connection (psycopg's ``prepare=True``). Every execution still goes through Django's
cursor wrapper: errors are translated, and queries are logged and counted like any other.
"""

import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model, QuerySet

# The value the queryset is built with, then replaced by the real one in the compiled parameters.
MARKER = -7_340_129_551

_M = TypeVar("_M", bound=Model)


class PreparingCursor(psycopg.Cursor):
    """A psycopg cursor with server-side binding that prepares every statement it runs (once per connection)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True, **kwargs)


def fetch_prepared(sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> tuple[Any, ...] | None:
    """The first row of ``sql`` run as a prepared statement on connection ``using``."""
    rows = fetch_all_prepared(sql, params, using=using, limit=1)
    return rows[0] if rows else None


def fetch_all_prepared(
    sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS, limit: int | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (at most ``limit``) run as a prepared statement on connection ``using``.

    The connection's health check runs first, as it does for a cursor Django hands out."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = PreparingCursor(connection.connection)
    # CursorWrapper(raw, connection) is what connection.make_cursor(raw) returns (its stub wants a wrapper).
    with (
        _PreparedDebugWrapper(raw, connection)
        if connection.queries_logged
        else CursorWrapper(raw, connection) as cursor
    ):
        cursor.execute(sql, params)
        return cursor.fetchall() if limit is None else cursor.fetchmany(limit)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's query-logging wrapper, logging the statement as written (psycopg keeps no text of a prepared
    execution for Django to read back)."""

    def debug_sql(self, sql: Any = None, params: Any = None, use_last_executed_query: bool = False, many: bool = False):
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


class _Compiled(Generic[_M]):
    """A queryset compiled once, through documented APIs: its model's concrete fields and its annotations are
    selected with ``values_list`` (model fields first, then annotations in the order they were added: the
    order in which the ORM writes them into the SELECT), and ``query.sql_with_params()`` gives the SQL; a row
    becomes an instance with ``Model.from_db``, as the ORM builds one, with the annotations set on it."""

    def __init__(self, queryset: QuerySet[_M]) -> None:
        model = queryset.model
        fields = model._meta.concrete_fields
        if any(hasattr(field, "from_db_value") for field in fields):  # psycopg's own values would be wrong
            raise ValueError(f"{model.__name__} has a field that converts database values; read it with the ORM")
        self.model = model
        self.attnames = [field.attname for field in fields]
        self.annotations = list(queryset.query.annotations)
        sql, params = queryset.values_list(*self.attnames, *self.annotations).query.sql_with_params()
        self.sql, self.params = sql, tuple(params)

    def instance(self, row: Sequence[Any]) -> _M:
        width = len(self.attnames)
        instance = self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, row[:width])
        for name, value in zip(self.annotations, row[width:], strict=True):
            setattr(instance, name, value)
        return instance


class PreparedGet(Generic[_M]):
    """``build(value)`` returns a queryset matching at most one row, in which ``value`` (an int, the primary
    key say) is the only thing that changes from call to call; ``get(value)`` returns that row's instance,
    with its annotations, or raises the model's ``DoesNotExist``. The default database only."""

    def __init__(self, build: Callable[[int], QuerySet[_M]]) -> None:
        self.build = build
        self._compiled: tuple[_Compiled[_M], int] | None = None

    def get(self, value: int) -> _M:
        if self._compiled is None:
            compiled = _Compiled(self.build(MARKER))
            if compiled.params.count(MARKER) != 1:
                raise ValueError("PreparedGet: the queryset must carry the value exactly once in its parameters")
            self._compiled = compiled, compiled.params.index(MARKER)
        compiled, marker_at = self._compiled
        params = list(compiled.params)
        params[marker_at] = value
        row = fetch_prepared(compiled.sql, params)
        if row is None:
            model: Any = compiled.model  # each model class has its own DoesNotExist (the Model stub has none)
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        return compiled.instance(row)


class PreparedRows(Generic[_M]):
    """``build(*key)`` returns a queryset in which nothing changes for the same key (a page of a list, the
    key being its bounds); ``rows(*key)`` returns its instances, with their annotations (default database).

    The statements of the last ``keys`` keys stay compiled; psycopg keeps at most ``prepared_max`` (100)
    statements prepared per connection and deallocates the least recently used beyond that."""

    def __init__(self, build: Callable[..., QuerySet[_M]], *, keys: int = 64) -> None:
        self.build = build
        self._compiled = functools.lru_cache(maxsize=keys)(self._compile)

    def rows(self, *key: Hashable) -> list[_M]:
        compiled = self._compiled(key)
        return [compiled.instance(row) for row in fetch_all_prepared(compiled.sql, compiled.params)]

    def _compile(self, key: tuple[Hashable, ...]) -> _Compiled[_M]:
        return _Compiled(self.build(*key))
