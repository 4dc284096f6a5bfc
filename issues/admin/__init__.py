"""The Django admin. Saves of issues and comments go through ``issues.services`` (version, events, resolved_at,
numbers).

Staff only (the admin requires ``is_staff``; its model permissions come from the ``staff`` group, issues/roles.py):
staff see every project and act as maintainers in each (``issues.access``), so the admin is not scoped by
project, but it keeps the project's rules: an issue's labels are its project's, its assignee can see the project,
and it never changes project.

The admin is no ladder (docs/security.md): only superusers change who is staff or superuser, groups and
permissions; API tokens are never shown in full, nor searchable by key.

One module per capability: projects.py (projects and their members), issues.py (issues, comments, the timeline),
labels.py, accounts.py (users and groups) and tokens.py (API tokens). Django's admin autodiscovery imports
``issues.admin``, which imports them all and so registers every model.
"""

from .accounts import PRIVILEGE_FIELDS, GroupAdmin, User, UserAdmin, is_superuser
from .issues import (
    ISSUE_KEY_SEARCH,
    CommentAdmin,
    IssueAdmin,
    IssueAdminForm,
    IssueEventAdmin,
    IssueEventInline,
    LabelsField,
)
from .labels import LabelAdmin, LabelAdminForm
from .projects import MembershipInline, ProjectAdmin, ProjectAdminForm, with_default_project
from .tokens import TokenAdmin, mask_key

__all__ = [
    "ISSUE_KEY_SEARCH",
    "PRIVILEGE_FIELDS",
    "CommentAdmin",
    "GroupAdmin",
    "IssueAdmin",
    "IssueAdminForm",
    "IssueEventAdmin",
    "IssueEventInline",
    "LabelAdmin",
    "LabelAdminForm",
    "LabelsField",
    "MembershipInline",
    "ProjectAdmin",
    "ProjectAdminForm",
    "TokenAdmin",
    "User",
    "UserAdmin",
    "is_superuser",
    "mask_key",
    "with_default_project",
]
