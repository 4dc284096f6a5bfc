"""The vocabulary of query parameters, written once for the issue list's filters (django-filter) and the reports'
parameters (DRF serializers): repeated and comma-list values, de-duplicated and capped; a user id or ``none``;
dates and date-times in UTC. Each parser raises ``ValueError`` with the message the client sees."""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from django.utils.dateparse import parse_date, parse_datetime

from .models import MAX_ID

ID_OR_NONE_ERROR = "Enter a user id or 'none'."
DATE_OR_DATETIME_ERROR = "Enter an ISO 8601 date (2026-01-31) or datetime (2026-01-31T12:00:00Z)."
TOO_MANY_VALUES = "At most {cap} values are allowed."


def split_values(raw: Iterable[Any]) -> list[str]:
    """Repeated values and comma lists as one flat list: ``["open,closed", "resolved"]`` → three values."""
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def distinct_values(values: Iterable[str], key: Callable[[str], str] | None = None) -> list[str]:
    """``values`` without repeats (the first of each, by ``key``), in their order."""
    seen: set[str] = set()
    kept = []
    for value in values:
        marker = key(value) if key else value
        if marker not in seen:
            seen.add(marker)
            kept.append(value)
    return kept


def too_many_values(values: Sequence[str], cap: int) -> str | None:
    """The message for more than ``cap`` values, or None."""
    return TOO_MANY_VALUES.format(cap=cap) if len(values) > cap else None


def parse_id_or_none(value: str) -> int | Literal["none"]:
    """A user id, or ``none`` (ignoring case) for "no user"."""
    value = value.strip()
    if value.lower() == "none":
        return "none"
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or not 1 <= int(value) <= MAX_ID:
        raise ValueError(ID_OR_NONE_ERROR)
    return int(value)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (no offset means UTC). Raises ``OverflowError`` past the calendar's ends."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_window_bound(value: str, *, end: bool) -> datetime:
    """An ISO 8601 date-time (no offset = UTC) or a date: the start of that day, or with ``end`` the start of the
    next (``until=2026-01-31`` includes January 31). Raises ``ValueError`` (bad) or ``OverflowError`` (range)."""
    value = value.strip()
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        day = parse_date(value)
        if day is None:
            raise ValueError(DATE_OR_DATETIME_ERROR)
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError(DATE_OR_DATETIME_ERROR)
    return as_utc(moment)
