"""Labels in the admin: a name is unique in its project ignoring case; deletions go through ``issues.services``, and
one refused as busy is said as a message."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet, Value
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .. import services
from ..models import Label, Source
from .projects import with_default_project


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
