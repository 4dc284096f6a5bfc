"""Projects and their members: their inputs (validate) and outputs (render)."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..limits import DESCRIPTION_MAX
from ..models import Membership, Project, Role, Visibility, validate_project_key
from .fields import ProjectKeyField, StrictInputSerializer, TextField
from .issues import UserRefSerializer

PROJECT_NAME_MAX = Project._meta.get_field("name").max_length or 200
PROJECT_READ_ONLY = ("id", "created_at", "my_role")


class ProjectSerializer(serializers.ModelSerializer):
    """A project as the API shows it, with the caller's role in it (``context["access"]``, an ``Access``)."""

    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "key", "name", "description", "visibility", "created_at", "my_role"]
        read_only_fields = fields

    # A plain schema: a nullable ChoiceField would name the role choices a second enum beside ``RoleEnum``.
    @extend_schema_field({"type": "string", "enum": [*Role.values, None], "nullable": True})
    def get_my_role(self, project: Project) -> str | None:
        access = self.context.get("access")
        return None if access is None else access.role(project.pk)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[A-Za-z][A-Za-z0-9]{1,9}$",
        "description": "2-10 characters, A-Z and 0-9, starting with a letter (upper-cased).",
    }
)
class NewProjectKeyField(ProjectKeyField):
    """The key of a new project: upper-cased, then it must be 2-10 characters ``A``-``Z`` and ``0``-``9`` starting
    with a letter. Checked as ASCII before upper-casing, so ``ı`` or ``ſ`` do not sneak in as ``I`` and ``S``."""

    def to_internal_value(self, data: Any) -> str:
        key = super().to_internal_value(data)
        if not data.isascii():
            raise serializers.ValidationError(validate_project_key.message, code="invalid")
        validate_project_key(key)
        return key


class ProjectCreateInputSerializer(StrictInputSerializer):
    read_only_names = PROJECT_READ_ONLY

    key = NewProjectKeyField()
    name = TextField(max_length=PROJECT_NAME_MAX)
    description = TextField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False, trim_whitespace=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class ProjectUpdateInputSerializer(StrictInputSerializer):
    """PATCH body: ``name``, ``description``, ``visibility``; the key never changes (a 400 naming it)."""

    read_only_names = (*PROJECT_READ_ONLY, "key")

    name = TextField(max_length=PROJECT_NAME_MAX, required=False)
    description = TextField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False, trim_whitespace=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class MembershipSerializer(serializers.ModelSerializer):
    """A member of a project: ``{"user": {"id", "username"}, "role"}``."""

    user = UserRefSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role"]
        read_only_fields = fields


class MembershipInputSerializer(StrictInputSerializer):
    """PUT body of a member: ``{"role"}`` (the user is the one in the path)."""

    read_only_names = ("user",)

    role = serializers.ChoiceField(choices=Role.choices)
