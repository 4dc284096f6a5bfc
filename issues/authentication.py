"""Token authentication that accepts both ``Authorization: Token <key>`` and ``Bearer <key>``."""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request


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
        return super().authenticate_credentials(key)

    def authenticate_header(self, request: Request) -> str:
        return "Token"
