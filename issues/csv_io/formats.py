"""The CSV formats the import reads: our own (``native``) and other trackers' exports (``jira``, ``gitlab``,
``github``), each a declarative ``Preset`` (which header feeds which field, value maps for status and priority, how
dates are written, which column repeats once per value), and the caller's ``mapping`` that overrides a preset.

The presets are written from the trackers' own documentation and export code (see docs/csv.md and
``../shared/FORMATS.md``): header spellings drift between versions, so a field may be fed by several spellings, the
first present winning. Headers and source values are matched ignoring case and surrounding spaces.

Nothing here reads a file or the database: ``resolve`` turns a header row, a format name and a mapping into a
``Layout`` (column indices and lookup tables) that the parser's per-row loop uses as plain locals.

The vocabulary lives in smaller modules, re-exported here so that ``formats.<name>`` keeps working: the dates in
dates.py, the presets in presets.py, the caller's mapping in mapping.py. This module turns them into a ``Layout``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .dates import DATE_PARSERS, CsvDateError, JiraDates, parse_iso, parse_jira
from .mapping import (
    FIELDS,
    FORMATS,
    PRIORITY_VALUES,
    STATUS_VALUES,
    UNKNOWN_USERS,
    ImportMapping,
    MappingError,
    UserMapping,
    parse_format,
    parse_mapping,
)
from .presets import GITHUB, GITLAB, JIRA, JIRA_STATUS_CATEGORIES, NATIVE, PRESETS, Preset, detect

__all__ = [
    "DATE_PARSERS",
    "FIELDS",
    "FORMATS",
    "GITHUB",
    "GITLAB",
    "JIRA",
    "JIRA_STATUS_CATEGORIES",
    "MAX_COLUMNS",
    "MAX_HEADER_BYTES",
    "MAX_UNMAPPED_VALUES",
    "MULTI_VALUE_FIELDS",
    "NATIVE",
    "PRESETS",
    "PRIORITY_VALUES",
    "STATUS_VALUES",
    "UNKNOWN_USERS",
    "CsvDateError",
    "HeaderProblem",
    "ImportMapping",
    "JiraDates",
    "Layout",
    "MappingError",
    "Preset",
    "UserMapping",
    "detect",
    "parse_format",
    "parse_iso",
    "parse_jira",
    "parse_mapping",
    "resolve",
]

MULTI_VALUE_FIELDS = frozenset({"labels"})  # a repeated column of these is one value per cell
MAX_COLUMNS = 1_000  # a real Jira "all fields" export has a few hundred
MAX_HEADER_BYTES = 256 * 1024
MAX_UNMAPPED_VALUES = 100  # per field, in the answer's ``unmapped_values``


# --- the layout of one file -------------------------------------------------------------------------------------


@dataclass
class Layout:
    """What the parser needs for one file: the chosen preset, field → column index (``labels``: all the indices of
    its repeated column), the value lookups (exact source value and lower-cased → ours), the columns ignored, and
    the effective mapping to show in the answer."""

    preset: Preset
    indices: dict[str, list[int]]
    header_names: dict[str, str]  # field → the header (as written) that feeds it
    statuses: dict[str, str]
    priorities: dict[str, str]
    status_values: dict[str, str]  # effective value maps, as shown in the answer
    priority_values: dict[str, str]
    ignored_columns: list[str]
    users: UserMapping

    def effective(self) -> dict[str, Any]:
        return {
            "columns": {header: name for name, header in self.header_names.items()},
            "values": {"status": self.status_values, "priority": self.priority_values},
            "users": self.users.names,
            "unknown_users": self.users.unknown,
        }


def _lookup(preset_map: Mapping[str, str], native: Sequence[str], overrides: Mapping[str, str]) -> tuple:
    """The exact and lower-cased lookups of a value map: our own values, then the preset's, then the caller's."""
    shown: dict[str, str] = {value: value for value in native}
    shown.update(preset_map)
    shown.update(overrides)
    lookup: dict[str, str] = {}
    for source, target in shown.items():
        lookup[source] = target
        lookup[source.lower()] = target
    return lookup, shown


def resolve(header: Sequence[str], format_name: str, mapping: ImportMapping) -> Layout:
    """The layout of a file with this header row. Raises ``HeaderProblem`` (a message) for a header the format
    cannot read: too many columns, a native duplicate, no title column."""
    if len(header) > MAX_COLUMNS:
        raise HeaderProblem(f"The header has {len(header)} columns; at most {MAX_COLUMNS} are accepted.")
    names = [cell.strip().lower() for cell in header]
    preset = detect(names) if format_name == "auto" else PRESETS[format_name]
    positions: dict[str, list[int]] = {}
    spelled: dict[str, str] = {}
    for index, (cell, name) in enumerate(zip(header, names, strict=True)):
        if name:
            positions.setdefault(name, []).append(index)
            spelled.setdefault(name, cell.strip())
    duplicates = sorted(name for name, where in positions.items() if len(where) > 1)
    if preset.refuse_duplicates and duplicates:
        raise HeaderProblem(f"Duplicated column(s) in the header: {', '.join(duplicates)}.")

    # Which header feeds which field: the caller's columns first, then the preset's spellings in order.
    feeds: dict[str, str] = {}  # field → header name (lower-cased)
    taken: set[str] = set()
    for name, target in mapping.columns.items():
        taken.add(name)
        if target is not None and name in positions and target not in feeds:
            feeds[target] = name
    for target, spellings in preset.columns.items():
        if target in feeds:
            continue
        for name in spellings:
            if name in positions and name not in taken:
                feeds[target] = name
                taken.add(name)
                break
    indices: dict[str, list[int]] = {}
    for target, name in list(feeds.items()):
        where = positions[name]
        if len(where) > 1 and target not in MULTI_VALUE_FIELDS:
            del feeds[target]  # a repeated column that is not one value per cell: ignored (listed below)
            continue
        indices[target] = where
    if "title" not in indices:
        title = preset.columns["title"][0]
        if preset is NATIVE:
            raise HeaderProblem(
                "The header has no 'title' column (columns: title, description, status, priority, assignee, labels, "
                "created_at, resolved_at)."
            )
        raise HeaderProblem(f"The header has no '{title}' column for the title ({preset.name} format).")
    used = set(feeds.values())
    ignored = [spelled[name] for name in positions if name not in used]
    statuses, status_values = _lookup(preset.statuses, STATUS_VALUES, mapping.statuses)
    priorities, priority_values = _lookup(preset.priorities, PRIORITY_VALUES, mapping.priorities)
    return Layout(
        preset=preset,
        indices=indices,
        header_names={target: spelled[name] for target, name in feeds.items()},
        statuses=statuses,
        priorities=priorities,
        status_values=status_values,
        priority_values=priority_values,
        ignored_columns=ignored,
        users=mapping.users,
    )


class HeaderProblem(Exception):
    """A header the format cannot read; the parser turns it into its ``CsvHeaderError``."""
