"""The bulk status body: ``[{"id", "status", "version"?}, ...]`` or ``{"ids": [...], "status"}``, parsed item by item
so that every bad item is reported."""

from collections.abc import Mapping
from typing import Any, TypeGuard

from rest_framework import serializers

from ..limits import VERSION_MAX
from ..models import MAX_ID, Status
from ..services import BulkItem

BULK_ITEM_KEYS = frozenset({"id", "status", "version"})
BULK_BODY_KEYS = frozenset({"ids", "status"})
STATUS_VALUES = frozenset(Status.values)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bulk_item(index: int, raw: Any) -> BulkItem:
    if type(raw) is dict:  # fast path: a well-formed item (JSON gives plain dict, int and str)
        issue_id, status, version = raw.get("id"), raw.get("status"), raw.get("version")
        if (
            type(issue_id) is int
            and 1 <= issue_id <= MAX_ID
            and type(status) is str
            and status in STATUS_VALUES
            and (version is None or (type(version) is int and 1 <= version <= VERSION_MAX))
            and raw.keys() <= BULK_ITEM_KEYS
        ):
            return BulkItem(index, issue_id, status, version, {})
    if not isinstance(raw, Mapping):
        return BulkItem(
            index=index,
            id=None,
            status=None,
            errors={"non_field_errors": ['Expected an object {"id", "status", "version"}.']},
        )
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in BULK_ITEM_KEYS:
            errors[str(key)] = ["Unknown field."]
    issue_id = raw.get("id")
    if "id" not in raw:
        errors["id"] = ["This field is required."]
    elif not _is_int(issue_id):
        errors["id"] = ["A valid integer is required."]
    elif not 1 <= issue_id <= MAX_ID:
        errors["id"] = [f"No issue has id {issue_id}."]
    status = raw.get("status")
    if "status" not in raw:
        errors["status"] = ["This field is required."]
    elif not isinstance(status, str) or status not in STATUS_VALUES:
        errors["status"] = [f'"{status}" is not a valid choice.' if isinstance(status, str) else "Not a valid string."]
    version = raw.get("version")
    if version is not None and (not _is_int(version) or not 1 <= version <= VERSION_MAX):
        errors["version"] = [f"A valid integer between 1 and {VERSION_MAX} is required."]
        version = None
    return BulkItem(index=index, id=issue_id, status=status, version=version, errors=errors)


def parse_bulk_status(data: Any, *, max_items: int) -> list[BulkItem]:
    """The items of a bulk status body: ``[{"id", "status", "version"?}, ...]`` or ``{"ids": [...], "status"}``.

    Per-item problems (wrong type, bad status, duplicate id) are recorded on each item, for the service to
    report together with unknown ids. A body of the wrong shape, empty, or longer than ``max_items`` raises
    a ValidationError.
    """
    if isinstance(data, Mapping):
        unknown = {str(key): ["Unknown field."] for key in data if key not in BULK_BODY_KEYS}
        missing = {key: ["This field is required."] for key in sorted(BULK_BODY_KEYS) if key not in data}
        if unknown or missing:
            raise serializers.ValidationError({**unknown, **missing})
        if not isinstance(data["ids"], list):
            raise serializers.ValidationError({"ids": ["Expected a list of issue ids."]})
        raw_items: list[Any] = [{"id": issue_id, "status": data["status"]} for issue_id in data["ids"]]
    elif isinstance(data, list):
        raw_items = data
    else:
        raise serializers.ValidationError(
            {"non_field_errors": ['Expected a list of {"id", "status", "version"} or {"ids": [...], "status": ...}.']}
        )
    if not raw_items:
        raise serializers.ValidationError({"non_field_errors": ["Send at least one item."]})
    if len(raw_items) > max_items:
        raise serializers.ValidationError(
            {"non_field_errors": [f"At most {max_items} items per request; got {len(raw_items)}."]},
            code="too_many_items",
        )
    items = [_bulk_item(index, raw) for index, raw in enumerate(raw_items)]
    first_index: dict[int, int] = {}
    for item in items:
        if "id" in item.errors:
            continue
        if item.id in first_index:
            item.errors["id"] = [f"Duplicate id: issue {item.id} is already item {first_index[item.id]}."]
        else:
            first_index[item.id] = item.index
    return items
