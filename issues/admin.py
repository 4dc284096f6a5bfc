"""The Django admin. Saves of issues and comments go through ``issues.services`` (version, events, resolved_at,
numbers).

Staff only (the admin requires ``is_staff``; its model permissions come from the ``staff`` group, issues/roles.py):
staff see every project and act as maintainers in each (``issues.access``), so the admin is not scoped by
project, but it keeps the project's rules: an issue's labels are its project's, its assignee can see the project,
and it never changes project.

The admin is no ladder (docs/security.md): only superusers change who is staff or superuser, groups and
permissions; API tokens are never shown in full, nor searchable by key.
"""

import re
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from . import services
from .access import default_project_key, user_can_see
from .exceptions import VersionConflict
from .models import MAX_ID, Comment, Issue, IssueEvent, Label, Membership, Project, Source

# "WEB-42" (any case) in the issue search: that issue.
ISSUE_KEY_SEARCH = re.compile(r"\s*([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,19})\s*")


def with_default_project(initial: dict[str, Any]) -> dict[str, Any]:
    """An add form's initial data, in the default project unless the URL names one (``?project=<id>``)."""
    if "project" not in initial:
        pk = Project.objects.filter(key=default_project_key()).values_list("pk", flat=True).first()
        if pk is not None:
            initial["project"] = str(pk)
    return initial


# --- Projects and their members ---------------------------------------------------------------------------------


class ProjectAdminForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["key", "name", "description", "visibility"]

    def clean_key(self) -> str:
        """Keys are upper case; the API matches them ignoring case, so ``web`` is taken as ``WEB``."""
        return str(self.cleaned_data["key"]).strip().upper()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ["user", "role"]
    autocomplete_fields = ["user"]
    verbose_name = "member"
    verbose_name_plural = "members"


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """A project and its members. The key is given once: issue keys (``WEB-42``) and the API's URLs carry it."""

    form = ProjectAdminForm
    list_display = ["key", "name", "visibility", "created_at"]
    list_filter = ["visibility"]
    search_fields = ["key", "name"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> list[str]:
        return ["key", "created_at"] if obj else ["created_at"]


# --- Issues -----------------------------------------------------------------------------------------------------


class LabelsField(forms.ModelMultipleChoiceField):
    """An issue's labels; named with their project's key where the choices span projects (the add form)."""

    with_project = True

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.project.key}: {obj.name}" if self.with_project else str(obj.name)


class IssueAdminForm(forms.ModelForm):
    """Carries the version the editor saw, so a save over someone else's change is refused; keeps the project's
    rules (its labels only, an assignee who can see it). ``project`` is a field on the add form only."""

    seen_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Issue
        fields = ["project", "title", "description", "status", "priority", "assignee", "labels"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["seen_version"].initial = self.instance.version
        # Only active users can be assigned (an issue keeps a since-deactivated assignee until changed).
        active = Q(is_active=True) | Q(pk=self.instance.assignee_id) if self.instance.assignee_id else Q(is_active=True)
        assignee = cast(forms.ModelChoiceField, self.fields["assignee"])
        assignee.queryset = get_user_model().objects.filter(active)
        labels = cast(LabelsField, self.fields["labels"])
        if self.instance.pk:  # the issue's project is known: its labels only
            labels.queryset = Label.objects.filter(project_id=self.instance.project_id)
            labels.with_project = False
        else:  # any project's, named with its key; clean() keeps those of the chosen project
            labels.queryset = Label.objects.select_related("project").order_by("project__key", "name", "id")

    def chosen_project(self) -> Project | None:
        return self.instance.project if self.instance.pk else self.cleaned_data.get("project")

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
        project = self.chosen_project()
        if project is None:
            return cleaned  # the add form's project field has its error already
        foreign = [label for label in cleaned.get("labels") or () if label.project_id != project.pk]
        if foreign:
            names = ", ".join(repr(label.name) for label in foreign)
            self.add_error("labels", f"Only labels of project {project.key} can be given; not {names}.")
        assignee = cleaned.get("assignee")
        changed = assignee is not None and assignee.pk != self.instance.assignee_id
        if assignee is not None and changed and not user_can_see(assignee, project.pk):
            self.add_error(
                "assignee",
                f"{assignee.get_username()} cannot see project {project.key} (not a member of this private "
                "project) and cannot be assigned its issues.",
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
    list_display = [
        "id",
        "issue_key",
        "title",
        "status",
        "priority",
        "assignee",
        "version",
        "created_at",
        "resolved_at",
    ]
    list_filter = ["project", "status", "priority"]
    search_fields = ["title"]
    list_select_related = ["assignee", "project"]
    filter_horizontal = ["labels"]
    readonly_fields = ["issue_key", "version", "reporter", "created_at", "updated_at", "resolved_at"]
    inlines = [IssueEventInline]

    @admin.display(description="key", ordering="project__key")  # then newest first: numbers follow creation
    def issue_key(self, obj: Issue) -> str:
        return obj.key if obj.pk else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Issue | None = None) -> list[str]:
        # An issue never changes project (a database trigger refuses it too): chosen on the add form only.
        fields = list(super().get_readonly_fields(request, obj))
        return ["project", *fields] if obj else [name for name in fields if name != "issue_key"]

    def get_fields(self, request: HttpRequest, obj: Issue | None = None) -> list[Any]:
        """The project and the key first, then the rest in the form's order."""
        fields = list(super().get_fields(request, obj))
        head = [name for name in ("project", "issue_key") if name in fields]
        return [*head, *(name for name in fields if name not in head)]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "labels":
            kwargs["form_class"] = LabelsField
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return with_default_project(super().get_changeform_initial_data(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Issue], search_term: str
    ) -> tuple[QuerySet[Issue], bool]:
        """Titles as before; a key (``WEB-42``, any case) also finds that issue."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        match = ISSUE_KEY_SEARCH.fullmatch(search_term)
        if match and int(match.group(2)) <= MAX_ID:
            key, number = match.group(1).upper(), int(match.group(2))
            results = results | queryset.filter(project__key=key, number=number)
        return results, may_have_duplicates

    def save_model(self, request: HttpRequest, obj: Issue, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        fields = {name: data[name] for name in ("title", "description", "status", "priority", "assignee")}
        labels = [label.name for label in data["labels"]]  # of the issue's project (IssueAdminForm.clean)
        if not change:
            created = services.issue_create(
                actor=request.user, project=data["project"], labels=labels, source=Source.ADMIN, **fields
            )
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
        return super().get_queryset(request).select_related("project", "assignee", "reporter")


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "issue", "author", "created_at"]
    list_select_related = ["issue__project", "author"]  # an issue is shown by its key
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


class LabelAdminForm(forms.ModelForm):
    """A label's name is unique in its project ignoring case (the database's functional unique index); said here
    as a form error. The project is chosen on the add form only: the issues carrying a label are its project's."""

    class Meta:
        model = Label
        fields = ["project", "name", "color"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean() returns
        project_id = self.instance.project_id if self.instance.pk else getattr(cleaned.get("project"), "pk", None)
        name = cleaned.get("name")
        if project_id is not None and name:
            taken = Label.objects.alias(lname=Lower("name")).filter(project_id=project_id, lname=Lower(Value(name)))
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("name", "A label with this name already exists in this project.")
        return cleaned


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    form = LabelAdminForm
    list_display = ["id", "name", "project", "color"]
    list_filter = ["project"]
    list_select_related = ["project"]
    search_fields = ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Label | None = None) -> list[str]:
        return ["project"] if obj else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return with_default_project(super().get_changeform_initial_data(request))

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
    list_select_related = ["issue__project", "actor"]  # an issue is shown by its key
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
