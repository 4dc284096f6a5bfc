"""Labels: their input and output."""

from rest_framework import serializers

from ..models import Label
from .fields import LabelNameField, ProjectKeyField, StrictInputSerializer


class LabelSerializer(serializers.ModelSerializer):
    """A label with its project's key (``project_key``: annotated by ``selectors.label_list``, or set by the view on
    a label it just wrote)."""

    project = serializers.CharField(source="project_key", read_only=True, help_text="The project's key.")
    issue_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Label
        fields = ["id", "project", "name", "color", "issue_count"]
        read_only_fields = fields


class LabelInputSerializer(StrictInputSerializer):
    read_only_names: tuple[str, ...] = ("id", "issue_count")

    project = ProjectKeyField(required=False, help_text="The project's key; the default project when omitted.")
    name = LabelNameField()
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)


class LabelUpdateInputSerializer(LabelInputSerializer):
    """PATCH body: a new name or colour. A label stays in its project (``project`` is read-only here)."""

    read_only_names = ("id", "issue_count", "project")

    project = None  # type: ignore[assignment]
    name = LabelNameField(required=False)
