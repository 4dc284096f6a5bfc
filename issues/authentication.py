"""Token authentication that accepts both ``Authorization: Token <key>`` and ``Bearer <key>``, and loads the
token, its user and the user's permissions in a single query."""

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from .prepared import fetch_prepared


@functools.cache
def _token_user_sql(vendor: str) -> str:
    """One statement for the token's user and the ids of the user's permissions (via groups, and direct),
    written out by hand because it runs on every request (its ORM form cost ~2.5 ms to compile each time).

    Ids, not names: joining the permission and content-type tables as well made PostgreSQL hash both tables
    on every request (the small auth tables are never analysed, so it plans for thousands of rows), about
    0.4 ms of database CPU; ids map to names through ``_permission_names``."""
    concat_all = "group_concat" if vendor == "sqlite" else "string_agg"
    user, token = get_user_model()._meta.db_table, Token._meta.db_table
    user_groups = get_user_model().groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    user_permissions = get_user_model().user_permissions.through._meta.db_table
    columns = ", ".join(f"u.{connection.ops.quote_name(column)}" for column in _user_columns())
    return (
        f"SELECT {columns}, "
        f"(SELECT {concat_all}(CAST(gp.permission_id AS TEXT), ' ') FROM {user_groups} ug "
        f"JOIN {group_permissions} gp ON gp.group_id = ug.group_id WHERE ug.user_id = u.id) AS group_perms, "
        f"(SELECT {concat_all}(CAST(up.permission_id AS TEXT), ' ') FROM {user_permissions} up "
        f"WHERE up.user_id = u.id) AS own_perms "
        f"FROM {token} t JOIN {user} u ON u.id = t.user_id WHERE t.key = %s"
    )


_PERMISSION_NAMES: dict[int, str] = {}


def _permission_names(ids: set[int]) -> set[str]:
    """``app_label.codename`` of each permission id. Permission rows are written by migrations and never
    renamed, so their names are kept per process; an id not seen yet reloads them (a new migration)."""
    if not ids <= _PERMISSION_NAMES.keys():
        rows = Permission.objects.values_list("id", "content_type__app_label", "codename")
        _PERMISSION_NAMES.update({pk: f"{app_label}.{codename}" for pk, app_label, codename in rows})
    return {_PERMISSION_NAMES[pk] for pk in ids if pk in _PERMISSION_NAMES}


def _user_columns() -> list[str]:
    return [field.column for field in get_user_model()._meta.concrete_fields]


def _token_user(key: str) -> Any:
    """The user of token ``key`` (None if there is none), with ``group_perms`` and ``own_perms`` strings.

    On PostgreSQL the statement is prepared once per connection (``prepared.fetch_prepared``): planning its
    joins cost about 0.4 ms of database CPU on every request, three times what executing it costs. psycopg
    returns the columns as Python values already; elsewhere ``raw()`` applies the backend's converters.
    """
    user_model = get_user_model()
    sql = _token_user_sql(connection.vendor)
    if connection.vendor != "postgresql":
        return next(iter(user_model.objects.raw(sql, [key])), None)
    row = fetch_prepared(sql, [key])
    if row is None:
        return None
    fields = user_model._meta.concrete_fields
    user = user_model.from_db(connection.alias, [field.attname for field in fields], row[: len(fields)])
    user.group_perms, user.own_perms = row[len(fields) :]
    return user


class TokenOrBearerAuthentication(TokenAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Request):  # type: ignore[override]
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower().decode(errors="replace") not in self.keywords:
            return None
        self.keyword = auth[0].decode(errors="replace")
        return super().authenticate(request)

    def authenticate_credentials(self, key: str):  # type: ignore[override]
        # Keys are 40 hex characters; anything else (NUL bytes, huge strings) cannot match and never
        # reaches the database.
        if len(key) > 64 or not key.isalnum() or not key.isascii():
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = _token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = Token(key=key, user=user)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if not user.is_superuser:
            # The permission backend (issues.backends) keeps a user's permissions in ``_perm_cache``; filling
            # it here spares every request the separate permission query.
            ids = f"{user.group_perms or ''} {user.own_perms or ''}".split()
            user._perm_cache = _permission_names({int(pk) for pk in ids})
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
