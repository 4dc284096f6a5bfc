"""What the import's parser yields and raises: ``ParsedRow`` (a row that passed validation), ``RowError`` (a line
and its field errors), and the errors that refuse a whole upload (``CsvDecodeError``, ``CsvHeaderError``,
``ImportTooLarge``)."""

from datetime import datetime
from typing import Any, NamedTuple

from api.exceptions import DomainError


class CsvDecodeError(DomainError):
    """The upload is not UTF-8: ``line`` is the first line holding bytes that do not decode (a 400)."""

    code = "invalid_encoding"

    def __init__(self, line: int) -> None:
        super().__init__(f"Line {line} is not valid UTF-8. Save the file as UTF-8 (with or without BOM).")
        self.line = line

    def body(self) -> dict[str, Any]:
        return {**super().body(), "line": self.line}


class CsvHeaderError(DomainError):
    """The header row is missing, too long or too wide, lacks a title column or (native) repeats a column (a 400)."""

    code = "invalid_header"


class ImportTooLarge(DomainError):
    """The upload has more bytes or rows than the settings allow (a 413; nothing is imported)."""

    status_code = 413
    code = "request_too_large"

    def body(self) -> dict[str, Any]:
        return {"detail": f"{self} Nothing was imported.", "code": self.code}

    @classmethod
    def bytes(cls, limit: int) -> "ImportTooLarge":
        return cls(f"The file is larger than the limit of {limit} bytes.")


class ParsedRow(NamedTuple):
    """A row that passed validation. ``assignee`` is the raw id, username or name (None when empty); the times are
    None when the file has none (the import's time is used), ``source_key`` the source tracker's key."""

    line: int
    title: str
    description: str
    status: str
    priority: str
    assignee: str | None
    labels: tuple[str, ...]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    source_key: str | None = None


class RowError(NamedTuple):
    line: int
    errors: dict[str, list[str]]
