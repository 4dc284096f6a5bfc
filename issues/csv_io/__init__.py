"""CSV import and export of issues: the formats the import reads (formats.py: our own and other trackers' exports,
declared as presets in presets.py, their dates in dates.py, and the caller's mapping in mapping.py), parsing and
validation (parse.py, pure functions over text; with cells.py, lines.py and results.py), the import's writes
(importer.py) and the export (export.py)."""

from . import formats
from .export import export_chunks, export_issues, export_row
from .formats import CsvDateError, MappingError
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
    "CsvDateError",
    "CsvDecodeError",
    "CsvHeaderError",
    "ImportParser",
    "ImportTooLarge",
    "MappingError",
    "ParsedRow",
    "RowError",
    "escape_cell",
    "export_chunks",
    "export_issues",
    "export_row",
    "formats",
    "unescape_cell",
]
