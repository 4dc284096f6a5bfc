"""An authentication backend that loads a user's permissions in one query instead of two."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission

FIELDS = ("content_type__app_label", "codename")


class OneQueryPermissionBackend(ModelBackend):
    """ModelBackend, but the user's own and group permissions come from a single query per request."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.order_by().values_list(*FIELDS)
            else:
                # Two inner-join arms in one UNION: cheaper than one query OR-ing two outer joins.
                own = Permission.objects.filter(user=user_obj).order_by().values_list(*FIELDS)
                via_groups = Permission.objects.filter(group__user=user_obj).order_by().values_list(*FIELDS)
                perms = own.union(via_groups)
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in perms}
        return user_obj._perm_cache
