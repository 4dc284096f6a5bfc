"""Projects and their members in the admin; ``with_default_project``, the add forms' initial project (issues,
labels)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from ..access import default_project_key
from ..models import Membership, Project


def with_default_project(initial: dict[str, Any]) -> dict[str, Any]:
    """An add form's initial data, in the default project unless the URL names one (``?project=<id>``)."""
    if "project" not in initial:
        pk = Project.objects.filter(key=default_project_key()).values_list("pk", flat=True).first()
        if pk is not None:
            initial["project"] = str(pk)
    return initial


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
