"""The ``staff`` group: the Django admin's model permissions, given to staff (``create_api_user --staff``).

What a user may do in the API is its role in each project (``issues.models.Membership``, decided by
``issues.access``), not a group. The admin, though, checks Django's model permissions, and staff get them from
this group; superusers grant finer rights there.

Migration 0002 created one group per global role (viewer, member, maintainer) besides ``staff``; migration 0010
turned their members into memberships of the default project and deleted them. ``ROLE_PERMISSIONS`` and
``sync_role_groups`` are that migration's step, kept as it ran (a migration's historical models know only the
permissions of their time); ``STAFF`` and ``sync_staff_group`` are today's, applied by migration 0011.
"""

from typing import Any

# --- Migration 0002, frozen -------------------------------------------------------------------------------------

VIEW = [
    "issues.view_issue",
    "issues.view_comment",
    "issues.view_label",
    "issues.view_issueevent",
    "auth.view_user",
]
MEMBER = [*VIEW, "issues.add_issue", "issues.change_issue", "issues.add_comment"]
MAINTAINER = [
    *MEMBER,
    "issues.bulk_update_issue",
    "issues.import_issue",
    "issues.add_label",
    "issues.change_label",
    "issues.delete_label",
]
STAFF_0002 = [
    *MAINTAINER,
    "issues.delete_issue",
    "issues.delete_comment",
    "issues.change_comment",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
    "auth.change_group",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "viewer": VIEW,
    "member": MEMBER,
    "maintainer": MAINTAINER,
    "staff": STAFF_0002,
}

# --- Today ------------------------------------------------------------------------------------------------------

STAFF_GROUP = "staff"

# Staff create projects and manage their members in the admin. Deleting a project is left to superusers: its
# issues protect it, and its labels and memberships would go with it.
STAFF = [
    *STAFF_0002,
    "issues.view_project",
    "issues.add_project",
    "issues.change_project",
    "issues.view_membership",
    "issues.add_membership",
    "issues.change_membership",
    "issues.delete_membership",
]


def _create_permissions(apps: Any) -> None:
    """Create the permissions of every model ``apps`` knows (in a migration, Django creates them only after the
    last migration has run)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def _set_group(apps: Any, name: str, perms: list[str]) -> None:
    """Create (or refresh) group ``name`` with exactly ``perms``."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=name)
    wanted = []
    for perm in perms:
        app_label, codename = perm.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    group.permissions.set(wanted)


def sync_role_groups(apps: Any) -> None:
    """Migration 0002's step: one group per role of the time, with exactly its permissions. Not for today's
    schema (the role groups are gone since migration 0010): use ``sync_staff_group``."""
    _create_permissions(apps)
    for role, perms in ROLE_PERMISSIONS.items():
        _set_group(apps, role, perms)


def sync_staff_group(apps: Any) -> None:
    """Create (or refresh) the ``staff`` group with exactly ``STAFF``; nothing else."""
    _create_permissions(apps)
    _set_group(apps, STAFF_GROUP, STAFF)
