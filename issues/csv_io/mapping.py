"""The caller's ``mapping`` and ``format`` of an import: the fields a column can feed, the parsed and validated
mapping (``ImportMapping``, ``UserMapping``) and ``MappingError`` for one that is not usable (a 400)."""

import json
from dataclasses import dataclass, field
from typing import Any

from api.exceptions import DomainError

from ..models import Priority, Status

FORMATS = ("auto", "native", "jira", "gitlab", "github")
# The fields a column can feed. ``source_key`` is the source tracker's own key (kept in the ``created`` event);
# ``status_category`` (Jira) is read when the status cell is empty.
FIELDS = (
    "title",
    "description",
    "status",
    "status_category",
    "priority",
    "assignee",
    "labels",
    "created_at",
    "updated_at",
    "resolved_at",
    "source_key",
)
UNKNOWN_USERS = ("error", "unassign")

STATUS_VALUES = tuple(Status.values)
PRIORITY_VALUES = tuple(Priority.values)


class MappingError(DomainError):
    """The ``mapping`` or ``format`` of an import is not usable (a 400 naming what is wrong; nothing is read)."""

    code = "invalid_mapping"


@dataclass
class UserMapping:
    """How assignee cells become users: explicit ``names`` (source name → username, matched ignoring case), then
    username, then full name; ``unknown`` says what a name matching nobody does (``error`` | ``unassign``)."""

    names: dict[str, str] = field(default_factory=dict)
    unknown: str = "error"


@dataclass
class ImportMapping:
    """A parsed, validated ``mapping``: ``columns`` header (lower-cased) → field (None: ignore the column)."""

    columns: dict[str, str | None] = field(default_factory=dict)
    column_names: dict[str, str] = field(default_factory=dict)  # lower-cased header → as the caller wrote it
    statuses: dict[str, str] = field(default_factory=dict)
    priorities: dict[str, str] = field(default_factory=dict)
    users: UserMapping = field(default_factory=UserMapping)


def _string_map(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"mapping.{where} must be a JSON object.")
    for key in value:
        if not key.strip():
            raise MappingError(f"mapping.{where} has an empty name.")
    return value


def parse_mapping(raw: str | None) -> ImportMapping:
    """The ``mapping`` parameter (JSON text; empty or absent: no overrides). Anything unusable is a 400 naming it:
    text that is not a JSON object, an unknown key, a column mapped to an unknown field, a value mapped to an unknown
    status or priority, an ``unknown_users`` other than ``error``/``unassign``."""
    mapping = ImportMapping()
    if raw is None or not raw.strip():
        return mapping
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MappingError(f"mapping is not valid JSON: {str(exc)[:200]}.") from None
    if not isinstance(data, dict):
        raise MappingError("mapping must be a JSON object.")
    unknown_keys = sorted(set(data) - {"columns", "values", "users", "unknown_users"})
    if unknown_keys:
        raise MappingError(
            f"mapping has unknown key(s): {', '.join(unknown_keys)} (columns, values, users, unknown_users)."
        )
    for header, target in _string_map(data.get("columns", {}), "columns").items():
        if target is not None and target != "" and target not in FIELDS:
            raise MappingError(
                f'mapping.columns maps "{header[:100]}" to an unknown field "{str(target)[:100]}" '
                f"(fields: {', '.join(FIELDS)}; null ignores the column)."
            )
        key = header.strip().lower()
        mapping.columns[key] = target or None
        mapping.column_names[key] = header.strip()
    values = _string_map(data.get("values", {}), "values")
    unknown_fields = sorted(set(values) - {"status", "priority"})
    if unknown_fields:
        raise MappingError(f"mapping.values has unknown field(s): {', '.join(unknown_fields)} (status, priority).")
    for name, choices, target_map in (
        ("status", STATUS_VALUES, mapping.statuses),
        ("priority", PRIORITY_VALUES, mapping.priorities),
    ):
        for source, target in _string_map(values.get(name, {}), f"values.{name}").items():
            if target not in choices:
                raise MappingError(
                    f'mapping.values.{name} maps "{source[:100]}" to an unknown {name} "{str(target)[:100]}" '
                    f"(one of: {', '.join(choices)})."
                )
            target_map[source.strip()] = target
    for source, username in _string_map(data.get("users", {}), "users").items():
        if not isinstance(username, str) or not username.strip():
            raise MappingError(f'mapping.users maps "{source[:100]}" to something that is not a username.')
        mapping.users.names[source.strip().lower()] = username.strip()
    unknown = data.get("unknown_users", "error")
    if unknown not in UNKNOWN_USERS:
        raise MappingError(f'mapping.unknown_users must be "error" or "unassign", not {json.dumps(unknown)[:50]}.')
    mapping.users.unknown = unknown
    return mapping


def parse_format(raw: str | None) -> str:
    name = (raw or "auto").strip().lower() or "auto"
    if name not in FORMATS:
        raise MappingError(f'Unknown format "{name[:50]}" (one of: {", ".join(FORMATS)}).')
    return name
