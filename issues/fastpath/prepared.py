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


def _markers(count: int) -> list[int]:
    return [MARKER - i for i in range(count)]


def _marker_positions(params: Sequence[Any], markers: Sequence[int]) -> list[tuple[int, int, bool]]:
    """Where each marker went in the compiled parameters: ``(parameter index, value index, as an array)``. A marker
    given as a one-element list (``[marker]``, for ``__any``) is an array parameter. Each must occur (once or more:
    the list's scope and its count use the same projects)."""
    positions: list[tuple[int, int, bool]] = []
    for value_at, marker in enumerate(markers):
        found = [(i, False) for i, p in enumerate(params) if p == marker]
        found += [(i, True) for i, p in enumerate(params) if p == [marker]]
        if not found:
            raise ValueError("Prepared: the queryset must carry each value in its parameters")
        positions.extend((param_at, value_at, as_array) for param_at, as_array in found)
    return positions


def _substitute(params: Sequence[Any], positions: list[tuple[int, int, bool]], values: Sequence[Any]) -> list[Any]:
    filled = list(params)
    for param_at, value_at, as_array in positions:
        value = values[value_at]
        filled[param_at] = [int(item) for item in value] if as_array else value
    return filled


class PreparedGet(Generic[_M]):
    """``build(*values)`` returns a queryset matching at most one row, in which ``values`` (ints, the primary
    key say, or lists of ints given to ``__any`` as ``[value]``) are the only things that change from call to
    call; ``get(*values)`` returns that row's instance, with its annotations, or raises the model's
    ``DoesNotExist``. The default database only."""

    def __init__(self, build: Callable[..., QuerySet[_M]], *, arity: int = 1) -> None:
        self.build = build
        self.arity = arity
        self._compiled: tuple[_Compiled[_M], list[tuple[int, int, bool]]] | None = None

    def get(self, *values: Any) -> _M:
        if self._compiled is None:
            markers = _markers(self.arity)
            compiled = _Compiled(self.build(*markers))
            self._compiled = compiled, _marker_positions(compiled.params, markers)
        compiled, positions = self._compiled
        row = fetch_prepared(compiled.sql, _substitute(compiled.params, positions, values))
        if row is None:
            model: Any = compiled.model  # each model class has its own DoesNotExist (the Model stub has none)
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        return compiled.instance(row)


class PreparedRows(Generic[_M]):
    """``build(*key, *values)`` returns a queryset in which nothing changes for the same key (a page of a list, the
    key being its bounds) but ``values`` (``arity`` of them, as for ``PreparedGet``: the caller's projects, say);
    ``rows(*key, values=...)`` returns its instances, with their annotations (default database).

    The statements of the last ``keys`` keys stay compiled; psycopg keeps at most ``prepared_max`` (100)
    statements prepared per connection and deallocates the least recently used beyond that."""

    def __init__(self, build: Callable[..., QuerySet[_M]], *, keys: int = 64, arity: int = 0) -> None:
        self.build = build
        self.arity = arity
        self._compiled = functools.lru_cache(maxsize=keys)(self._compile)

    def rows(self, *key: Hashable, values: Sequence[Any] = ()) -> list[_M]:
        compiled, positions = self._compiled(key)
        params = _substitute(compiled.params, positions, values)
        return [compiled.instance(row) for row in fetch_all_prepared(compiled.sql, params)]

    def _compile(self, key: tuple[Hashable, ...]) -> tuple[_Compiled[_M], list[tuple[int, int, bool]]]:
        markers = _markers(self.arity)
        compiled = _Compiled(self.build(*key, *markers))
        return compiled, _marker_positions(compiled.params, markers)
