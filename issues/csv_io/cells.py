"""The cells of the CSV import and export: the columns each writes or reads, the limits and defaults of a cell,
formula escaping (``escape_cell`` on export, ``unescape_cell`` on import; see export.py) and the per-cell checks the
parser's row loop calls (title, choice and label errors)."""

from ..limits import DESCRIPTION_MAX, LABEL_NAME_MAX, LABELS_PER_ISSUE_MAX, TITLE_MAX, USERNAME_MAX
from ..models import DONE_STATUSES, Priority, Status

IMPORT_COLUMNS = (
    "title",
    "description",
    "status",
    "priority",
    "assignee",
    "labels",
    "created_at",
    "updated_at",
    "resolved_at",
)
EXPORT_COLUMNS = (
    "id",
    "project",
    "key",
    "title",
    "description",
    "status",
    "priority",
    "assignee",
    "labels",
    "reporter",
    "version",
    "created_at",
    "updated_at",
    "resolved_at",
)

MAX_TITLE = TITLE_MAX  # the API's limits (issues/limits.py), bound to module names for the per-row loop
MAX_DESCRIPTION = DESCRIPTION_MAX
MAX_LABEL = LABEL_NAME_MAX
MAX_LABELS_PER_ISSUE = LABELS_PER_ISSUE_MAX
MAX_USERNAME = USERNAME_MAX
MAX_ASSIGNEE = 2 * USERNAME_MAX  # a full name ("Nick Nestle") may be longer than a username
MAX_SOURCE_KEY = 100
DONE = frozenset(status.value for status in DONE_STATUSES)

FORMULA_TRIGGERS = frozenset("=+-@\t\r")
STATUSES = frozenset(Status.values)
PRIORITIES = frozenset(Priority.values)
DEFAULT_STATUS = Status.OPEN.value  # plain str: enum attribute access is slow in the per-row loop
DEFAULT_PRIORITY = Priority.MEDIUM.value

NUL_ERROR = "Null characters are not allowed."
BLANK_ERROR = "This field may not be blank."


# --- formula escaping -------------------------------------------------------------------------------


def escape_cell(value: str) -> str:
    """``value`` as safe to open in a spreadsheet: a ``'`` in front when it could start a formula."""
    if not value:
        return value
    first = value[0]
    if first in FORMULA_TRIGGERS:
        return "'" + value
    if first == "'":
        stripped = value.lstrip("'")
        if stripped and stripped[0] in FORMULA_TRIGGERS:
            return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """The inverse of ``escape_cell``: one leading ``'`` removed when quotes are followed by a trigger."""
    if value and value[0] == "'":
        stripped = value.lstrip("'")
        if stripped and stripped[0] in FORMULA_TRIGGERS:
            return value[1:]
    return value


# --- per-cell checks of the import ------------------------------------------------------------------------


def title_error(title: str) -> str:
    if "\x00" in title:
        return NUL_ERROR
    if not title:
        return BLANK_ERROR
    return f"Ensure this field has no more than {MAX_TITLE} characters."


def choice_error(value: str, choices: frozenset[str]) -> str:
    shown = value.strip()[:50].replace("\x00", "\\0")
    return f'"{shown}" is not a valid choice (one of: {", ".join(sorted(choices))}).'


def parse_labels(cell: str) -> tuple[tuple[str, ...], str | None]:
    """Label names from ``a, b; c``: trimmed, empties dropped, duplicates (ignoring case) dropped."""
    if cell[0] == "'":
        cell = unescape_cell(cell)
    if "\x00" in cell:
        return (), NUL_ERROR
    names: dict[str, str] = {}
    for part in cell.replace(";", ",").split(",") if ";" in cell else cell.split(","):
        name = part.strip()
        if name:
            names.setdefault(name.lower(), name)
    for name in names.values():
        if len(name) > MAX_LABEL:
            return (), f"Label names are at most {MAX_LABEL} characters: {name[:MAX_LABEL]}…"
    if len(names) > MAX_LABELS_PER_ISSUE:
        return (), f"At most {MAX_LABELS_PER_ISSUE} labels per issue."
    return tuple(names.values()), None
