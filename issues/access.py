"""Who can see a project and what a role may do: decided here, and nowhere else.

Every view asks this module (through ``ProjectPermission`` and the selectors, which scope every read to
``Access.visible_ids``); the admin and the services ask it about assignees. The rules are the contract's
(docs/api.md, "Projects and roles"):

- a ``private`` project is seen by its members and by staff; an ``internal`` one by every authenticated user too,
  with the viewer role unless a membership gives more;
- staff (``is_staff``, and superusers) see every project and act as maintainers in each;
- what each role may do is ``ROLE_ACTIONS``; a project the caller cannot see does not exist for them (404, never
  403: ``Access.require``).

A hand-written map rather than django-guardian or ``rules``: a role per (user, project) is one row of
``Membership``, the permissions of a role are three fixed actions, and the visible projects must be known as a
list of ids to scope a query (guardian's per-object permission rows, one per issue or per project and
permission, would be more rows to keep and a join on every read; ``rules`` decides per object in Python, which
cannot scope a list). The whole decision costs no query on a token request: the token's statement also reads
the caller's memberships and the internal projects (``issues.fastpath.tokens``).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import Membership, Project, Role, Visibility


class Action(StrEnum):
    READ = "read"  # the project's issues, comments, labels, timeline, reports, exports
    WRITE = "write"  # create issues, PATCH them, replace their labels, comment
    MANAGE = "manage"  # bulk status, CSV import, the project's labels, members, webhooks and settings


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.MEMBER: frozenset({Action.READ, Action.WRITE}),
    Role.MAINTAINER: frozenset({Action.READ, Action.WRITE, Action.MANAGE}),
}

DENIED_MESSAGES = {
    Action.WRITE: "You need the member role in this project to do this.",
    Action.MANAGE: "You need the maintainer role in this project to do this.",
}


def default_project_key() -> str:
    return str(getattr(settings, "DEFAULT_PROJECT_KEY", "MAIN")).strip().upper() or "MAIN"


@dataclass
class Access:
    """What one caller may see and do. ``projects`` maps each visible project's id to ``(key, role)``; for staff,
    ``everything`` is set and ``projects`` is filled only on demand (``project_by_key``)."""

    user_id: int | None
    everything: bool = False
    projects: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def visible_ids(self) -> list[int] | None:
        """The ids of the projects the caller can see, ascending; None for "all of them" (staff)."""
        return None if self.everything else sorted(self.projects)

    def role(self, project_id: int) -> str | None:
        if self.everything:
            return Role.MAINTAINER
        found = self.projects.get(project_id)
        return found[1] if found else None

    def sees(self, project_id: int) -> bool:
        return self.everything or project_id in self.projects

    def can(self, project_id: int, action: Action) -> bool:
        role = self.role(project_id)
        return role is not None and action in ROLE_ACTIONS[role]

    def can_anywhere(self, action: Action) -> bool:
        """Whether some project lets the caller do ``action`` (a route that only such callers may use at all)."""
        return self.everything or any(action in ROLE_ACTIONS[role] for _, role in self.projects.values())

    def require(self, project_id: int, action: Action) -> None:
        """404 when the caller cannot see the project, 403 when its role does not allow ``action``."""
        if not self.sees(project_id):
            raise NotFound()
        if not self.can(project_id, action):
            raise PermissionDenied(DENIED_MESSAGES.get(action))

    def project_by_key(self, key: str) -> Project:
        """The visible project with this key (ignoring case). Raises ``Project.DoesNotExist`` for an unknown key and
        for a project the caller cannot see alike. For a caller who is not staff, no query: the project carries
        its id and key only (what a create needs; keys never change)."""
        key = str(key).strip().upper()
        if not self.everything:
            for pk, (project_key, _role) in self.projects.items():
                if project_key == key:
                    return Project(pk=pk, key=project_key)
            raise Project.DoesNotExist(key)
        return Project.objects.get(key=key)

    def project_to_write(self, key: str | None, action: Action) -> Project:
        """The project a write body names in ``project`` (the default project when None or empty), for ``action``:
        a 400 on ``project`` when it is unknown or one the caller cannot see (the same answer), a 403 when the
        caller's role there does not allow ``action``."""
        key = key or default_project_key()
        try:
            project = self.project_by_key(key)
        except Project.DoesNotExist as exc:
            raise ValidationError({"project": [f"Unknown project '{key}'."]}) from exc
        self.require(project.pk, action)
        return project

    def ids_by_keys(self, keys: Iterable[str]) -> dict[str, int | None]:
        """``{key: id}`` for each key (upper-cased), None for one that is unknown or invisible (no difference)."""
        wanted = {str(key).strip().upper() for key in keys}
        if self.everything:
            found = dict(Project.objects.filter(key__in=wanted).values_list("key", "id"))
        else:
            found = {key: pk for pk, (key, _role) in self.projects.items() if key in wanted}
        return {key: found.get(key) for key in wanted}


# Reads made on nobody's behalf, once the caller's right to them was checked (a conflict's current state, say).
SYSTEM = Access(user_id=None, everything=True)


def resolve_project_keys(access: Access, keys: Iterable[str]) -> list[int]:
    """The ids of the projects ``keys`` names (ignoring case), for a ``project`` parameter. Raises ``ValueError``
    with the client's message for a key that is unknown or names a project the caller cannot see (the same
    message: nothing tells the two apart)."""
    found = access.ids_by_keys(keys)
    unknown = sorted(key for key, pk in found.items() if pk is None)
    if unknown:
        raise ValueError(f"Unknown project '{unknown[0]}'.")
    return sorted({pk for pk in found.values() if pk is not None})


def _from_rows(user: Any, memberships: str | None, internal: str | None) -> Access:
    """An Access from the two strings the token statement reads: ``"id:KEY:role ..."`` and ``"id:KEY ..."``."""
    projects: dict[int, tuple[str, str]] = {}
    for item in (internal or "").split():
        pk, key = item.split(":")
        projects[int(pk)] = (key, Role.VIEWER)
    for item in (memberships or "").split():
        pk, key, role = item.split(":")
        projects[int(pk)] = (key, role)
    return Access(user_id=user.pk, projects=projects)


def access_for(user: Any) -> Access:
    """The caller's Access, computed once per request (kept on the user object)."""
    cached = getattr(user, "_project_access", None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated or not user.is_active:
        access = Access(user_id=None)
    elif is_staff(user):
        access = Access(user_id=user.pk, everything=True)
    elif hasattr(user, "access_memberships"):  # read by the token's statement
        access = _from_rows(user, user.access_memberships, user.access_internal)
    else:
        projects: dict[int, tuple[str, str]] = {pk: (key, Role.VIEWER.value) for pk, key in internal_projects()}
        rows = Membership.objects.filter(user_id=user.pk).values_list("project_id", "project__key", "role")
        projects.update({pk: (key, role) for pk, key, role in rows})
        access = Access(user_id=user.pk, projects=projects)
    if user is not None:
        user._project_access = access
    return access


def is_staff(user: Any) -> bool:
    """Staff see every project and act as maintainers in each; a superuser counts as staff."""
    return bool(user.is_staff or user.is_superuser)


def internal_projects() -> list[tuple[int, str]]:
    return list(Project.objects.filter(visibility=Visibility.INTERNAL).values_list("id", "key"))


def user_can_see(user: Any, project_id: int) -> bool:
    """Whether ``user`` (an assignee, say) can see project ``project_id``: staff, an internal project, or a
    membership. One query (none for staff)."""
    if user is None:
        return False
    if is_staff(user):
        return True
    member = Membership.objects.filter(project_id=project_id, user_id=user.pk)
    return Project.objects.filter(Q(visibility=Visibility.INTERNAL) | Exists(member), pk=project_id).exists()


def users_who_see(project: Project, user_ids: Iterable[int]) -> set[int]:
    """Those of ``user_ids`` (active users) who can see ``project``, in one query (the import's assignees). The
    project's visibility is read by the query itself (``project`` may carry its id and key only)."""
    from django.contrib.auth import get_user_model

    ids = set(user_ids)
    if not ids:
        return set()
    member = Membership.objects.filter(project_id=project.pk, user_id=OuterRef("pk"))
    internal = Project.objects.filter(pk=project.pk, visibility=Visibility.INTERNAL)
    users = get_user_model().objects.filter(pk__in=ids, is_active=True)
    users = users.filter(Q(is_staff=True) | Q(is_superuser=True) | Exists(member) | Exists(internal))
    return set(users.values_list("pk", flat=True))


STAFF_ONLY = "staff"


class ProjectPermission(BasePermission):
    """The one DRF permission class of the tracker's views. Authenticated (and active) callers only; the view's
    ``permission_map[action]`` says what the route needs before any project is known:

    - an ``Action``: the caller must be allowed it in at least one project (else 403: a viewer everywhere cannot
      use the bulk route at all); the project of the object is then checked by the view with ``Access.require``;
    - ``STAFF_ONLY``: staff only (creating projects);
    - nothing (absent): authentication only (the lists, which the selectors scope).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = getattr(view, "action", None) or (request.method or "").lower()
        needed = getattr(view, "permission_map", {}).get(action)
        if needed is None:
            return True
        if needed == STAFF_ONLY:
            return is_staff(user)
        return access_for(user).can_anywhere(needed)
