"""The token's user and what the user may see (memberships, internal projects) in one prepared statement (every
authenticated request runs it)."""

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from ..models import Membership, Project, Visibility
from .prepared import fetch_prepared


@functools.cache
def _token_user_sql() -> str:
    """One statement for the token's user, the user's memberships (``"project_id:KEY:role ..."``) and the internal
    projects (``"id:KEY ..."``), from which ``issues.access`` decides what the caller sees and may do; written out
    by hand because it runs on every request (its ORM form is costly to compile each time)."""
    user, token = get_user_model()._meta.db_table, Token._meta.db_table
    membership, project = Membership._meta.db_table, Project._meta.db_table
    columns = ", ".join(f"u.{connection.ops.quote_name(column)}" for column in _user_columns())
    return (
        f"SELECT {columns}, "
        f"(SELECT string_agg(m.project_id || ':' || p.key || ':' || m.role, ' ') FROM {membership} m "
        f"JOIN {project} p ON p.id = m.project_id WHERE m.user_id = u.id) AS access_memberships, "
        f"(SELECT string_agg(p.id || ':' || p.key, ' ') FROM {project} p "
        f"WHERE p.visibility = '{Visibility.INTERNAL.value}') AS access_internal "
        f"FROM {token} t JOIN {user} u ON u.id = t.user_id WHERE t.key = %s"
    )


def _user_columns() -> list[str]:
    return [field.column for field in get_user_model()._meta.concrete_fields if field.column is not None]


def token_user(key: str) -> Any:
    """The user of token ``key`` (None if there is none), with ``access_memberships`` and ``access_internal``.

    The statement is prepared once per connection (``fastpath.prepared.fetch_prepared``): planning its joins
    cost more than executing it. psycopg returns the columns as Python values already.
    """
    user_model = get_user_model()
    row = fetch_prepared(_token_user_sql(), [key])
    if row is None:
        return None
    fields = user_model._meta.concrete_fields
    user: Any = user_model.from_db(connection.alias, [field.attname for field in fields], row[: len(fields)])
    user.access_memberships, user.access_internal = row[len(fields) :]
    return user
