"""The bulk status body: ``[{"id", "status", "version"?}, ...]`` or ``{"ids": [...], "status"}``, parsed item by item
so that every bad item is reported. An ``id`` is an issue id or an issue key (``WEB-42``, ignoring case); the
service looks the keys up, all at once."""

import re
from collections.abc import Hashable, Mapping
from typing import Any, TypeGuard

from rest_framework import serializers

from ..limits import VERSION_MAX
from ..models import MAX_ID, Status
from ..services import BulkItem
from ..services.bulk import duplicate_message

BULK_ITEM_KEYS = frozenset({"id", "status", "version"})
BULK_BODY_KEYS = frozenset({"ids", "status"})
STATUS_VALUES = frozenset(Status.values)
# A project key (2–10 characters, a letter first) and an issue number that fits a bigint, ignoring case.
ISSUE_KEY = re.compile(r"([A-Z][A-Z0-9]{1,9})-([0-9]{1,18})", re.ASCII | re.IGNORECASE)
ID_ERROR = "A valid integer id or issue key (such as WEB-42) is required."


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_issue_key(value: str) -> tuple[str, int] | None:
    """``("WEB", 42)`` for ``"web-42"``; None when ``value`` is not an issue key."""
    match = ISSUE_KEY.fullmatch(value)
    return None if match is None else (match[1].upper(), int(match[2]))


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
    for name in raw:
        if name not in BULK_ITEM_KEYS:
            errors[str(name)] = ["Unknown field."]
    issue_id = raw.get("id")
    key = parse_issue_key(issue_id) if isinstance(issue_id, str) else None
    if "id" not in raw:
        errors["id"] = ["This field is required."]
    elif key is None:  # else a key, looked up by the service
        if not _is_int(issue_id):
            errors["id"] = [ID_ERROR]
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
    return BulkItem(index=index, id=issue_id, status=status, version=version, errors=errors, key=key)


def parse_bulk_status(data: Any, *, max_items: int) -> list[BulkItem]:
    """The items of a bulk status body: ``[{"id", "status", "version"?}, ...]`` or ``{"ids": [...], "status"}``.

    Per-item problems (wrong type, bad status, duplicate id) are recorded on each item, for the service to
    report together with unknown ids. Repeats of one form (an id twice, a key twice in any case) are found here;
    an id and a key naming the same issue only by the service, once it has looked the keys up. A body of the
    wrong shape, empty, or longer than ``max_items`` raises a ValidationError.
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
    first_index: dict[Hashable, int] = {}
    for item in items:
        if "id" in item.errors:
            continue
        named: Hashable = item.id if item.key is None else item.key
        if named in first_index:
            item.errors["id"] = duplicate_message(item, first_index[named])
        else:
            first_index[named] = item.index
    return items
