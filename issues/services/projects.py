"""Projects and their members: create a project, change it, and give or take a member's role, never leaving a project
without a maintainer.

Every membership change runs in one transaction that first locks the project's row (``FOR NO KEY UPDATE``: it
serialises the API's membership changes in that project, but not the issue creates, whose foreign key takes only
``FOR KEY SHARE``), then the project's maintainer memberships (``FOR UPDATE``, so a change made elsewhere, the admin
say, is waited for as well). Two requests that each remove or demote one of the last two maintainers therefore run
one after the other, and the second one sees the first one's write: one succeeds, the other is a 409.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from api.exceptions import DomainError

from ..models import Membership, Project, Role, Visibility

User = get_user_model()


class ProjectKeyTaken(DomainError):
    """Another project has this key: a 400 on ``key`` (only staff create projects, and staff see every project)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"A project with the key '{key}' already exists.")

    def body(self) -> dict[str, Any]:
        return {"key": [str(self)]}


class LastMaintainer(DomainError):
    """The change would leave the project without a maintainer (an active user with the maintainer role): a 409."""

    status_code = 409
    code = "last_maintainer"


def project_create(*, key: str, name: str, description: str = "", visibility: str = Visibility.PRIVATE) -> Project:
    """Create a project (its issue-number sequence comes with it: the row's trigger). Raises ``ProjectKeyTaken``.
    The creator gets no membership: only staff create projects, and staff are maintainers everywhere."""
    project = Project(key=key, name=name, description=description, visibility=visibility)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError as exc:
        raise ProjectKeyTaken(key) from exc
    return project


def project_update(
    *, project: Project, name: str | None = None, description: str | None = None, visibility: str | None = None
) -> Project:
    """Change a project's name, description or visibility (its key never changes); returns the project as it now
    is, read under the row's lock (``project`` may be a stub with its id only). Raises ``Project.DoesNotExist`` when
    it was deleted meanwhile (in the admin)."""
    wanted = {"name": name, "description": description, "visibility": visibility}
    with transaction.atomic():
        current = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
        changed = [field for field, value in wanted.items() if value is not None and getattr(current, field) != value]
        for field in changed:
            setattr(current, field, wanted[field])
        if changed:
            current.save(update_fields=changed)
    return current


def membership_set(*, project: Project, user_id: int, role: str) -> tuple[Membership, bool]:
    """Give user ``user_id`` the ``role`` in ``project``, adding them as a member if they are not one; returns the
    membership (its user loaded) and whether it was added. Raises ``User.DoesNotExist`` for an unknown or deactivated
    user, ``LastMaintainer`` when this would demote the project's last maintainer; nothing is written then."""
    with transaction.atomic():
        _lock_project(project)
        user = User.objects.get(pk=user_id, is_active=True)
        membership = Membership.objects.filter(project_id=project.pk, user_id=user_id).first()
        if membership is None:
            # No duplicate insert is possible: every membership change in the project waits for this one's lock.
            return Membership.objects.create(project=project, user=user, role=role), True
        membership.user = user
        if membership.role == role:
            return membership, False
        if membership.role == Role.MAINTAINER:
            _keep_a_maintainer(project, leaving_user_id=user_id)
        membership.role = role
        membership.save(update_fields=["role"])
        return membership, False


def membership_remove(*, project: Project, user_id: int) -> None:
    """Remove user ``user_id`` from ``project``. Raises ``Membership.DoesNotExist`` when they are not a member (or are
    deactivated), ``LastMaintainer`` when they are its last maintainer; nothing is written then."""
    with transaction.atomic():
        _lock_project(project)
        membership = Membership.objects.get(project_id=project.pk, user_id=user_id, user__is_active=True)
        if membership.role == Role.MAINTAINER:
            _keep_a_maintainer(project, leaving_user_id=user_id)
        Membership.objects.filter(pk=membership.pk).delete()


def _lock_project(project: Project) -> None:
    """Lock the project's row for the rest of the transaction (see the module's docstring). Raises
    ``Project.DoesNotExist`` when it was deleted meanwhile."""
    if not Project.objects.select_for_update(no_key=True).filter(pk=project.pk).values_list("pk", flat=True):
        raise Project.DoesNotExist(project.key)


def _keep_a_maintainer(project: Project, *, leaving_user_id: int) -> None:
    """Raise ``LastMaintainer`` unless an active maintainer other than ``leaving_user_id`` remains. Locks the
    maintainer memberships it reads, so none of them leaves before this transaction ends."""
    maintainers = (
        Membership.objects.select_for_update(of=("self",))
        .filter(project_id=project.pk, role=Role.MAINTAINER, user__is_active=True)
        .order_by("pk")
        .values_list("user_id", flat=True)
    )
    if not any(user_id != leaving_user_id for user_id in maintainers):
        raise LastMaintainer(
            f"User {leaving_user_id} is the last maintainer of project {project.key}; make another member a "
            "maintainer first."
        )
