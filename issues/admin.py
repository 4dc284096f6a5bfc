"""The Django admin. Saves of issues and comments go through ``issues.services`` (version, events, resolved_at)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

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

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        seen = cleaned.get("seen_version")
        if self.instance.pk and seen is not None:
            current = Issue.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if current != seen:
                raise forms.ValidationError(
                    f"This issue was changed by someone else (now version {current}); reload it and try again."
                )
        return cleaned


class IssueEventInline(admin.TabularInline):
    model = IssueEvent
    extra = 0
    can_delete = False
    fields = ["timestamp", "type", "actor", "source", "details"]
    readonly_fields = fields
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

    def delete_model(self, request: HttpRequest, obj: Label) -> None:
        services.label_delete(label=obj, actor=request.user, source=Source.ADMIN)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Label]) -> None:
        for label in queryset:
            services.label_delete(label=label, actor=request.user, source=Source.ADMIN)


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
