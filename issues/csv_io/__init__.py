"""CSV import and export of issues: parsing and validation (parse.py, pure functions over text), the import's
writes (importer.py) and the export (export.py)."""

from .export import export_chunks, export_issues, export_row
from .parse import (
    EXPORT_COLUMNS,
    IMPORT_COLUMNS,
    CsvDecodeError,
    CsvHeaderError,
    ImportParser,
    ImportTooLarge,
    ParsedRow,
    RowError,
    escape_cell,
    unescape_cell,
)

__all__ = [
    "EXPORT_COLUMNS",
    "IMPORT_COLUMNS",
    "CsvDecodeError",
    "CsvHeaderError",
    "ImportParser",
    "ImportTooLarge",
    "ParsedRow",
    "RowError",
    "escape_cell",
    "export_chunks",
    "export_issues",
    "export_row",
    "unescape_cell",
]
