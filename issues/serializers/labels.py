"""Labels: their input and output."""

from rest_framework import serializers

from ..models import Label
from .fields import LabelNameField, StrictInputSerializer


class LabelSerializer(serializers.ModelSerializer):
    issue_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Label
        fields = ["id", "name", "color", "issue_count"]
        read_only_fields = fields


class LabelInputSerializer(StrictInputSerializer):
    read_only_names = ("id", "issue_count")

    name = LabelNameField()
    color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)


class LabelUpdateInputSerializer(LabelInputSerializer):
    name = LabelNameField(required=False)
