"""Dates as the import's formats write them: ISO 8601 (ours, GitLab's), Jira's ``dd/MMM/yy h:mm a`` (with a fast
per-file parser, ``JiraDates``), the ``DATE_PARSERS`` a preset names, and ``CsvDateError`` for a date cell that does
not read."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from api.exceptions import DomainError


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
