"""Authorisation: each view action needs a list of Django permissions (see ``issues.roles``)."""

from typing import TYPE_CHECKING

from rest_framework import permissions
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ActionPermission(permissions.BasePermission):
    """Authenticated users only; the view's ``permission_map[action]`` lists the permissions needed.

    An action missing from the map needs only authentication (OPTIONS metadata, say).
    """

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = getattr(view, "action", None) or (request.method or "").lower()
        required = getattr(view, "permission_map", {}).get(action, ())
        return user.has_perms(required)
