"""The roles of the API, as Django groups and the permissions each one holds.

A data migration creates the groups; ``create_api_user`` puts users in them. Views check the
permissions (never the group names), so superusers can grant finer rights in the admin.
"""

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
STAFF = [
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
    "staff": STAFF,
}
ROLES = ("viewer", "member", "maintainer")


def sync_role_groups(apps) -> None:
    """Create (or refresh) one group per role with exactly its permissions."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
