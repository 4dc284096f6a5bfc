"""The Django admin. Saves of issues and comments go through ``issues.services`` (version, events, resolved_at).

The admin is no ladder (docs/security.md): only superusers change who is staff or superuser, groups and
permissions; API tokens are never shown in full, nor searchable by key.
"""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from . import services
from .exceptions import VersionConflict
from .models import Comment, Issue, IssueEvent, Label, Source


class IssueAdminForm(forms.ModelForm):
    """Carries the version the editor saw, so a save over someone else's change is refused."""

    seen_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Issue
        fields = ["title", "description", "status", "priority", "assignee", "labels"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["seen_version"].initial = self.instance.version
        # Only active users can be assigned (an issue keeps a since-deactivated assignee until changed).
        active = Q(is_active=True) | Q(pk=self.instance.assignee_id) if self.instance.assignee_id else Q(is_active=True)
        assignee = cast(forms.ModelChoiceField, self.fields["assignee"])
        assignee.queryset = get_user_model().objects.filter(active)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns
        seen = cleaned.get("seen_version")
        if self.instance.pk and seen is not None:
            current = Issue.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if current != seen:
                raise forms.ValidationError(
                    f"This issue was changed by someone else (now version {current}); reload it and try again."
                )
        return cleaned


_EVENT_FIELDS = ("timestamp", "type", "actor", "source", "details")


class IssueEventInline(admin.TabularInline):
    model = IssueEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = _EVENT_FIELDS
    ordering = ["timestamp", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    form = IssueAdminForm
    list_display = ["id", "title", "status", "priority", "assignee", "version", "created_at", "resolved_at"]
    list_filter = ["status", "priority"]
    search_fields = ["title"]
    list_select_related = ["assignee"]
    filter_horizontal = ["labels"]
    readonly_fields = ["version", "reporter", "created_at", "updated_at", "resolved_at"]
    inlines = [IssueEventInline]

    def save_model(self, request: HttpRequest, obj: Issue, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        fields = {name: data[name] for name in ("title", "description", "status", "priority", "assignee")}
        labels = [label.name for label in data["labels"]]
        if not change:
            created = services.issue_create(actor=request.user, labels=labels, source=Source.ADMIN, **fields)
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        try:
            _updated, _ = services.issue_update(
                issue_id=obj.pk,
                actor=request.user,
                expected_version=data.get("seen_version"),
                changes={**fields, "labels": labels},
                source=Source.ADMIN,
            )
        except VersionConflict as conflict:
            messages.error(request, f"Not saved: the issue is now at version {conflict.current.version}.")
            return
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Labels were saved by the service with their event (no ``form.save_m2m()``); the timeline inline is
        read-only, so saving its formset writes nothing."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Issue]:
        return super().get_queryset(request).select_related("assignee", "reporter")


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "issue", "author", "created_at"]
    raw_id_fields = ["issue"]
    readonly_fields = ["author", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Comment | None = None) -> list[str]:
        # A comment's body is history once posted: it has no "edited" event to record a change.
        return ["issue", "body", "author", "created_at"] if obj else ["author", "created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A comment is part of the timeline (its ``commented`` event); there is no event for removing one.
        return False

    def save_model(self, request: HttpRequest, obj: Comment, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        created = services.comment_create(
            issue_id=obj.issue_id, author=request.user, body=obj.body, source=Source.ADMIN
        )
        obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "color"]
    search_fields = ["name"]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """A deletion refused as busy rolls back the whole view (its log entry too) and says so, instead of
        reporting a deletion that did not happen."""
        try:
            return super().delete_view(request, object_id, extra_context)
        except services.LabelBusy as exc:
            self.message_user(request, f"{exc} Nothing was deleted.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:issues_label_change", args=[object_id]))

    def delete_model(self, request: HttpRequest, obj: Label) -> None:
        services.label_delete(label=obj, actor=request.user, source=Source.ADMIN)  # LabelBusy: see delete_view

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Label]) -> None:
        self._delete(request, list(queryset))

    def _delete(self, request: HttpRequest, labels: list[Label]) -> None:
        for label in labels:
            try:
                services.label_delete(label=label, actor=request.user, source=Source.ADMIN)
            except services.LabelBusy:
                messages.error(request, f"Label {label.name!r} is in use by a running change; try again shortly.")
            except Label.DoesNotExist:
                messages.warning(request, f"Label {label.name!r} was already deleted.")


@admin.register(IssueEvent)
class IssueEventAdmin(admin.ModelAdmin):
    list_display = ["id", "issue", "type", "source", "actor", "timestamp"]
    list_filter = ["type", "source"]
    raw_id_fields = ["issue"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Accounts: no ladder ----------------------------------------------------------------------------------------

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


# --- API tokens: never shown in full ----------------------------------------------------------------------------


def mask_key(key: str | None) -> str:
    """The first 4 characters and an ellipsis: enough to tell tokens apart, useless to authenticate."""
    return f"{key[:4]}\u2026" if key else ""


def _masked_token_str(token: Token) -> str:
    return mask_key(token.key)


# ``str(token)`` is the key in DRF; the admin prints ``str(obj)`` in titles, breadcrumbs, messages, its log
# ("Recent actions") and the list of objects a user's deletion takes along. Masked everywhere instead (the
# code that hands out a key uses ``token.key``).
Token.__str__ = _masked_token_str  # type: ignore[method-assign, assignment]

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DrfTokenAdmin):
    """DRF's token admin (its URLs use the user's id, never the key), showing a masked key only.

    Superusers create a token for a user (add page: pick the user) and revoke one (delete); a token is never
    changed in place, and its key is never displayed: its user gets it from ``POST /api/auth/token``, an
    operator from ``manage.py create_api_user``. Searching matches usernames only, and no URL filter,
    ordering or ``_to_field`` may involve the key (each would be an oracle for it).
    """

    list_display = ("masked_key", "user", "created")
    search_fields = ("user__username",)

    @admin.display(description="key")
    def masked_key(self, obj: Token) -> str:
        return mask_key(obj.key)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("user",) if obj is None else ("masked_key", "user", "created")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("masked_key", "user", "created")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # view, add and delete only

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest) -> bool:
        parts = lookup.split(LOOKUP_SEP)
        if parts[0] in {"key", "pk"} or {"key", "password", "auth_token"} & set(parts):
            return False
        return super().lookup_allowed(lookup, value, request)

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        return to_field not in {"key", "pk"} and super().to_field_allowed(request, to_field)
