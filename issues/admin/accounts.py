"""Users and groups in the admin, with no ladder (docs/security.md): only superusers change who is staff or
superuser, groups and permissions, or a colleague's staff account."""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

User = get_user_model()

# Who may do what in the admin, and who gets which permission: superusers only, for every account.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's UserAdmin, where a non-superuser (staff with ``auth.change_user``)

    - sees ``is_staff``, ``is_superuser``, ``groups`` and ``user_permissions`` read-only, on every account
      including their own; read-only fields are not part of the form, so a crafted POST carrying them changes
      nothing (and ``save_model`` puts the stored flags back all the same);
    - can only view, not change (nor set the password of, nor delete) another staff or superuser account:
      taking over a colleague's account would be the same ladder;
    - cannot filter users by their token's key (``?auth_token__key__startswith=``: a key oracle).
    """

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not is_superuser(request):
            fields += [name for name in PRIVILEGE_FIELDS if name not in fields]
        return fields

    def _is_protected(self, request: HttpRequest, obj: Any) -> bool:
        return (
            obj is not None
            and not is_superuser(request)
            and obj.pk != request.user.pk
            and (obj.is_staff or obj.is_superuser)
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._is_protected(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._is_protected(request, obj) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        if not is_superuser(request):
            stored = User.objects.filter(pk=obj.pk).values("is_staff", "is_superuser").first() if change else None
            obj.is_staff = bool(stored and stored["is_staff"])
            obj.is_superuser = bool(stored and stored["is_superuser"])
        super().save_model(request, obj, form, change)

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest) -> bool:
        if lookup.split(LOOKUP_SEP)[0] == "auth_token":
            return False
        return super().lookup_allowed(lookup, value, request)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """A group's permissions are granted to all its members, the staff group's to the staff themselves:
    groups are read-only for non-superusers (the staff role may view them)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)
