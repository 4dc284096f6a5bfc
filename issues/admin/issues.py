"""Issues, their comments and their timeline in the admin. Saves go through ``issues.services`` (version, events,
resolved_at, numbers); an issue keeps its project's rules (its labels only, an assignee who can see it)."""

import re
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .. import services
from ..access import user_can_see
from ..exceptions import VersionConflict
from ..models import MAX_ID, Comment, Issue, IssueEvent, Label, Project, Source
from .projects import with_default_project

# "WEB-42" (any case) in the issue search: that issue.
ISSUE_KEY_SEARCH = re.compile(r"\s*([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,19})\s*")


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
