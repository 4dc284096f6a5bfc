"""The CSV formats the import reads: our own (``native``) and other trackers' exports (``jira``, ``gitlab``,
``github``), each a declarative ``Preset`` (which header feeds which field, value maps for status and priority, how
dates are written, which column repeats once per value), and the caller's ``mapping`` that overrides a preset.

The presets are written from the trackers' own documentation and export code (see docs/csv.md and
``../shared/FORMATS.md``): header spellings drift between versions, so a field may be fed by several spellings, the
first present winning. Headers and source values are matched ignoring case and surrounding spaces.

Nothing here reads a file or the database: ``resolve`` turns a header row, a format name and a mapping into a
``Layout`` (column indices and lookup tables) that the parser's per-row loop uses as plain locals.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
MULTI_VALUE_FIELDS = frozenset({"labels"})  # a repeated column of these is one value per cell
UNKNOWN_USERS = ("error", "unassign")
MAX_COLUMNS = 1_000  # a real Jira "all fields" export has a few hundred
MAX_HEADER_BYTES = 256 * 1024
MAX_UNMAPPED_VALUES = 100  # per field, in the answer's ``unmapped_values``

STATUS_VALUES = tuple(Status.values)
PRIORITY_VALUES = tuple(Priority.values)


class MappingError(DomainError):
    """The ``mapping`` or ``format`` of an import is not usable (a 400 naming what is wrong; nothing is read)."""

    code = "invalid_mapping"


class CsvDateError(DomainError):
    """A date cell the format cannot read (``31/Feb/26``). The whole import is refused (a 400, nothing written):
    a date that does not read means the file's dates are written another way than the format says (another locale
    or site setting), and importing the rest with misread history would be worse than stopping."""

    code = "invalid_date"

    def __init__(self, line: int, column: str, value: str, expected: str) -> None:
        shown = value.strip()[:50]
        super().__init__(
            f'Line {line}, column "{column}": "{shown}" is not a valid date (expected {expected}). '
            "Nothing was imported."
        )
        self.line, self.column, self.value = line, column, shown

    def body(self) -> dict[str, Any]:
        return {**super().body(), "line": self.line, "column": self.column, "value": self.value}


# --- dates ------------------------------------------------------------------------------------------------------


def parse_iso(value: str) -> datetime:
    """ISO 8601 (our export's ``2026-02-25T22:17:00Z``) and GitLab's ``2026-02-25 22:17:00`` (UTC); a time without
    offset is UTC, a date alone is midnight UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_JIRA_DATE = re.compile(r"(\d{1,2})/([A-Za-z]{3})/(\d{2}|\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?")
_PIVOT_YEAR = datetime.now(UTC).year + 20  # the last year a two-digit year may mean (Java's SimpleDateFormat)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: index for index, name in enumerate(_MONTH_NAMES, 1)}


def parse_jira(value: str) -> datetime:
    """Jira's ``dd/MMM/yy h:mm a`` (``25/Feb/26 10:17 PM``), also with a 24-hour time or a date alone
    (``11/May/24``); two-digit years as Java reads them (within 80 years before and 20 after now). Jira writes the
    exporting user's time zone without saying which: read as UTC. Raises ValueError (``31/Feb/26`` too)."""
    match = _JIRA_DATE.fullmatch(value)
    if match is None:
        return parse_iso(value)  # a site set to ISO dates
    day, month_name, year_text, hour_text, minute, second, half = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        raise ValueError(value)
    year = int(year_text)
    if len(year_text) == 2:
        year += 2000 if 2000 + year <= _PIVOT_YEAR else 1900
    hour = int(hour_text or 0)
    if half:
        if not 1 <= hour <= 12:
            raise ValueError(value)
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    return datetime(year, month, int(day), hour, int(minute or 0), int(second or 0), tzinfo=UTC)


class JiraDates:
    """``parse_jira`` for the rows of one file, fast: a file's dates share few days and few times of day, so the day
    (``25/Feb/26``) and the time (``10:17 PM``) are each parsed once and remembered (at most ``MEMO`` of each), and a
    cell costs two dict lookups and an addition. Anything else goes through ``parse_jira``."""

    MEMO = 20_000

    def __init__(self) -> None:
        self.days: dict[str, datetime] = {}
        self.times: dict[str, timedelta] = {}

    def __call__(self, value: str) -> datetime:
        day_text, _, time_text = value.partition(" ")
        day = self.days.get(day_text)
        if day is None:
            try:
                day = parse_jira(day_text)
            except ValueError:
                return parse_jira(value)
            if len(self.days) < self.MEMO:
                self.days[day_text] = day
        if not time_text:
            return day
        offset = self.times.get(time_text)
        if offset is None:
            offset = parse_jira("01/Jan/2000 " + time_text) - _JIRA_EPOCH  # raises ValueError for a bad time
            if len(self.times) < self.MEMO:
                self.times[time_text] = offset
        return day + offset


_JIRA_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Per date style: a factory of the parser for one file (called once per import), and how the style is described.
DATE_PARSERS: dict[str, tuple[Callable[[], Callable[[str], datetime]], str]] = {
    "iso": (lambda: parse_iso, "ISO 8601, e.g. 2026-02-25T22:17:00Z"),
    "jira": (JiraDates, "dd/MMM/yy h:mm a, e.g. 25/Feb/26 10:17 PM"),
    "gitlab": (lambda: parse_iso, "YYYY-MM-DD HH:MM:SS in UTC, e.g. 2026-02-25 22:17:00"),
}


# --- presets ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """One format, declared: ``columns`` maps each field to the header spellings that feed it (first present wins;
    the others are ignored), ``statuses``/``priorities`` map source values to ours (besides our own values, always
    accepted), ``dates`` names the date parser, ``first_of_list`` the fields whose cell is a comma list of which
    the first is taken (GitLab's and GitHub's assignees: an issue here has one), ``refuse_duplicates`` whether a
    repeated header is refused (native) or read (labels) and otherwise ignored (the others), ``detect`` the header
    names that recognise the format (all of one of the tuples)."""

    name: str
    columns: Mapping[str, Sequence[str]]
    statuses: Mapping[str, str] = field(default_factory=dict)
    priorities: Mapping[str, str] = field(default_factory=dict)
    dates: str = "iso"
    first_of_list: frozenset[str] = frozenset()
    refuse_duplicates: bool = False
    detect: Sequence[Sequence[str]] = ()


NATIVE = Preset(
    name="native",
    columns={
        "title": ("title",),
        "description": ("description",),
        "status": ("status",),
        "priority": ("priority",),
        "assignee": ("assignee",),
        "labels": ("labels",),
        "created_at": ("created_at",),
        "updated_at": ("updated_at",),
        "resolved_at": ("resolved_at",),
        "source_key": ("key",),
    },
    refuse_duplicates=True,
)

JIRA = Preset(
    name="jira",
    columns={
        "title": ("summary",),
        "description": ("description",),
        "status": ("status",),
        "status_category": ("status category",),
        "priority": ("priority",),
        "assignee": ("assignee",),
        "labels": ("labels",),
        "created_at": ("created",),
        "updated_at": ("updated",),
        "resolved_at": ("resolved",),
        "source_key": ("issue key",),
    },
    statuses={
        "To Do": "open",
        "Open": "open",
        "Backlog": "open",
        "Selected for Development": "open",
        "Reopened": "open",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Resolved": "resolved",
        "Done": "closed",
        "Closed": "closed",
    },
    priorities={
        "Highest": "critical",
        "Blocker": "critical",
        "Critical": "critical",
        "High": "high",
        "Major": "high",
        "Medium": "medium",
        "Low": "low",
        "Minor": "low",
        "Lowest": "low",
        "Trivial": "low",
    },
    dates="jira",
    detect=(("summary", "issue key"), ("summary", "issue id")),
)

GITLAB = Preset(
    name="gitlab",
    columns={
        "title": ("title",),
        "description": ("description",),
        "status": ("state",),
        "assignee": ("assignee username", "assignee"),
        "labels": ("labels",),
        "created_at": ("created at (utc)",),
        "updated_at": ("updated at (utc)",),
        "resolved_at": ("closed at (utc)",),
        "source_key": ("iid", "issue id"),
    },
    statuses={"Open": "open", "Opened": "open", "Closed": "closed"},
    dates="gitlab",
    first_of_list=frozenset({"assignee"}),
    detect=(("title", "created at (utc)"), ("title", "iid", "state"), ("title", "issue id", "state")),
)

GITHUB = Preset(
    name="github",
    columns={
        "title": ("title",),
        "description": ("body", "description"),
        "status": ("status",),
        "priority": ("priority",),
        "assignee": ("assignees",),
        "labels": ("labels",),
        "source_key": ("url",),
    },
    statuses={
        "Todo": "open",
        "To Do": "open",
        "Backlog": "open",
        "Ready": "open",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Done": "closed",
    },
    priorities={"P0": "critical", "P1": "high", "P2": "medium", "P3": "low", "Urgent": "critical"},
    first_of_list=frozenset({"assignee"}),
    detect=(("title", "assignees"), ("title", "url", "status")),
)

JIRA_STATUS_CATEGORIES = {"to do": "open", "in progress": "in_progress", "done": "closed"}
PRESETS = {preset.name: preset for preset in (NATIVE, JIRA, GITLAB, GITHUB)}


def detect(names: Sequence[str]) -> Preset:
    """The format of a header (lower-cased, trimmed names): the first foreign preset whose ``detect`` names are all
    there, else native (a native header without ``title`` is then refused as such)."""
    present = set(names)
    for preset in (JIRA, GITLAB, GITHUB):
        if any(all(name in present for name in group) for group in preset.detect):
            return preset
    return NATIVE


# --- the caller's mapping ---------------------------------------------------------------------------------------


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
