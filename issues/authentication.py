"""Token authentication that accepts both ``Authorization: Token <key>`` and ``Bearer <key>``, and loads the
token, its user and the user's permissions in a single query."""

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from .prepared import fetch_prepared

PERMISSION_SEPARATOR = " "


@functools.cache
def _token_user_sql(vendor: str) -> str:
    """One statement for the token's user and the user's permission names (group and direct), written out
    by hand because this runs on every request and compiling its ORM equivalent cost ~2.5 ms each time."""
    concat_all = "group_concat" if vendor == "sqlite" else "string_agg"
    user, token = get_user_model()._meta.db_table, Token._meta.db_table
    permission, content_type = Permission._meta.db_table, ContentType._meta.db_table
    user_groups = get_user_model().groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    user_permissions = get_user_model().user_permissions.through._meta.db_table
    names = f"{concat_all}(ct.app_label || '.' || p.codename, '{PERMISSION_SEPARATOR}')"
    columns = ", ".join(f"u.{connection.ops.quote_name(column)}" for column in _user_columns())
    return (
        f"SELECT {columns}, "
        f"(SELECT {names} FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id "
        f"JOIN {group_permissions} gp ON gp.permission_id = p.id "
        f"JOIN {user_groups} ug ON ug.group_id = gp.group_id WHERE ug.user_id = u.id) AS group_perms, "
        f"(SELECT {names} FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id "
        f"JOIN {user_permissions} up ON up.permission_id = p.id WHERE up.user_id = u.id) AS own_perms "
        f"FROM {token} t JOIN {user} u ON u.id = t.user_id WHERE t.key = %s"
    )


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
            names = f"{user.group_perms or ''}{PERMISSION_SEPARATOR}{user.own_perms or ''}"
            user._perm_cache = {name for name in names.split(PERMISSION_SEPARATOR) if name}
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
