"""Token authentication that accepts both ``Authorization: Token <key>`` and ``Bearer <key>``, and loads the
token, its user and the user's permissions in a single query."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from issues.fastpath.tokens import permission_names, token_user


class TokenOrBearerAuthentication(TokenAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower().decode(errors="replace") not in self.keywords:
            return None
        self.keyword = auth[0].decode(errors="replace")
        return super().authenticate(request)

    def authenticate_credentials(self, key: str):
        # Keys are 40 hex characters; anything else (NUL bytes, huge strings) cannot match and never
        # reaches the database.
        if len(key) > 64 or not key.isalnum() or not key.isascii():
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = Token(key=key, user=user)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if not user.is_superuser:
            # The permission backend (issues.backends) keeps a user's permissions in ``_perm_cache``; filling
            # it here spares every request the separate permission query.
            ids = f"{user.group_perms or ''} {user.own_perms or ''}".split()
            user._perm_cache = permission_names({int(pk) for pk in ids})
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
