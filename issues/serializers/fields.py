"""Input fields and the strict input serializer every write body goes through."""

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from ..limits import LABEL_NAME_MAX
from ..models import MAX_ID, PROJECT_KEY_MAX, validate_label_name


def encodable_text(value: str) -> None:
    """Reject text the database cannot store (lone surrogates from JSON ``\\ud800`` escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DjangoValidationError("Text contains characters that are not valid Unicode.") from exc


class TextField(serializers.CharField):
    """A CharField (trimmed, NUL bytes rejected) that also rejects text that is not valid Unicode."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(encodable_text)

    def to_internal_value(self, data: Any) -> str:
        # DRF's CharField turns numbers into text ({"title": 1e999} would become "inf"); JSON text is a string.
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LabelNameField(TextField):
    """A label name: trimmed, 1–50 characters, without ``,`` or ``;``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", LABEL_NAME_MAX)
        super().__init__(**kwargs)
        self.validators.append(validate_label_name)


class UserIdField(serializers.PrimaryKeyRelatedField):
    """A user id: an integer (or a string of digits); floats, booleans and out-of-range ids are rejected."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str):
            if not (data.isascii() and data.isdigit()) or len(data) > 19:
                self.fail("incorrect_type", data_type="str")
            data = int(data)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class StrictInputSerializer(serializers.Serializer):
    """Rejects keys that are not writable fields of this serializer, naming each one."""

    read_only_names: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for key in data:
                if key in writable:
                    continue
                if key in self.read_only_names:
                    errors[key] = ["This field is read-only."]
                else:
                    errors[str(key)] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ProjectKeyField(TextField):
    """A project key as a client writes it: trimmed, upper-cased (keys match ignoring case). Whether the project
    exists, and whether the caller can see it, is the view's question (``issues.access``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", PROJECT_KEY_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).upper()
