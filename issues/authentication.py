"""Token authentication that accepts both ``Authorization: Token <key>`` and ``Bearer <key>``, and loads the
token, its user and the user's permissions in a single query."""

from django.contrib.auth.models import Permission
from django.db.models import CharField, OuterRef, Subquery, TextField, Value
from django.db.models.functions import Concat
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from .aggregates import ConcatAll

PERMISSION_SEPARATOR = " "


def _permission_names(through: str) -> Subquery:
    """One string holding the ``app_label.codename`` of every permission the token's user has ``through``
    its groups (``"group__user"``) or directly (``"user"``)."""
    names = (
        Permission.objects.filter(**{through: OuterRef("user_id")})
        .order_by()
        .values(through)
        .annotate(
            names=ConcatAll(
                Concat("content_type__app_label", Value("."), "codename", output_field=CharField()),
                separator=PERMISSION_SEPARATOR,
            )
        )
        .values("names")
    )
    return Subquery(names, output_field=TextField())


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
        try:
            token = (
                Token.objects.select_related("user")
                .annotate(group_perms=_permission_names("group__user"), own_perms=_permission_names("user"))
                .get(key=key)
            )
        except Token.DoesNotExist as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if not user.is_superuser:
            # The permission backend (issues.backends) keeps a user's permissions in ``_perm_cache``; filling
            # it here spares every request the separate permission query.
            names = f"{token.group_perms or ''}{PERMISSION_SEPARATOR}{token.own_perms or ''}"
            user._perm_cache = {name for name in names.split(PERMISSION_SEPARATOR) if name}
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
