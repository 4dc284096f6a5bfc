"""The token's user and the user's permissions in one prepared statement (every authenticated request runs it)."""

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from rest_framework.authtoken.models import Token

from .prepared import fetch_prepared


@functools.cache
def _token_user_sql() -> str:
    """One statement for the token's user and the ids of the user's permissions (via groups, and direct),
    written out by hand because it runs on every request (its ORM form is costly to compile each time).

    Ids, not names: joining the permission and content-type tables as well made PostgreSQL hash both tables
    on every request (the small auth tables are never analysed, so it plans for thousands of rows); ids map
    to names through ``permission_names``. Figures: docs/performance.md."""
    user, token = get_user_model()._meta.db_table, Token._meta.db_table
    user_groups = get_user_model().groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    user_permissions = get_user_model().user_permissions.through._meta.db_table
    columns = ", ".join(f"u.{connection.ops.quote_name(column)}" for column in _user_columns())
    return (
        f"SELECT {columns}, "
        f"(SELECT string_agg(CAST(gp.permission_id AS TEXT), ' ') FROM {user_groups} ug "
        f"JOIN {group_permissions} gp ON gp.group_id = ug.group_id WHERE ug.user_id = u.id) AS group_perms, "
        f"(SELECT string_agg(CAST(up.permission_id AS TEXT), ' ') FROM {user_permissions} up "
        f"WHERE up.user_id = u.id) AS own_perms "
        f"FROM {token} t JOIN {user} u ON u.id = t.user_id WHERE t.key = %s"
    )


_PERMISSION_NAMES: dict[int, str] = {}


def permission_names(ids: set[int]) -> set[str]:
    """``app_label.codename`` of each permission id. Permission rows are written by migrations and never
    renamed, so their names are kept per process; an id not seen yet reloads them (a new migration)."""
    if not ids <= _PERMISSION_NAMES.keys():
        rows = Permission.objects.values_list("id", "content_type__app_label", "codename")
        _PERMISSION_NAMES.update({pk: f"{app_label}.{codename}" for pk, app_label, codename in rows})
    return {_PERMISSION_NAMES[pk] for pk in ids if pk in _PERMISSION_NAMES}


def _user_columns() -> list[str]:
    return [field.column for field in get_user_model()._meta.concrete_fields if field.column is not None]


def token_user(key: str) -> Any:
    """The user of token ``key`` (None if there is none), with ``group_perms`` and ``own_perms`` strings.

    The statement is prepared once per connection (``fastpath.prepared.fetch_prepared``): planning its joins
    cost more than executing it. psycopg returns the columns as Python values already.
    """
    user_model = get_user_model()
    row = fetch_prepared(_token_user_sql(), [key])
    if row is None:
        return None
    fields = user_model._meta.concrete_fields
    user: Any = user_model.from_db(connection.alias, [field.attname for field in fields], row[: len(fields)])
    user.group_perms, user.own_perms = row[len(fields) :]
    return user
