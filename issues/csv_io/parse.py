"""CSV parsing and writing for the import and export of issues: pure functions over text, no HTTP, no writes.

Import
    ``ImportParser`` reads an upload as a stream of byte chunks, splits it into physical lines, decodes
    each line as strict UTF-8 (a BOM on the first line is dropped) and hands them to ``csv.reader``, with the
    delimiter (comma, semicolon or tab) read from the header line. The header decides the format (formats.py:
    native, Jira, GitLab, GitHub, or the one asked for) and the caller's mapping over it; the per-row loop then
    reads the columns the format names, maps values, reads dates and counts the values no map knew.
    Memory holds one chunk and one record, never the file. It yields, in file order, ``ParsedRow``
    (a row that passed validation, values normalised) or ``RowError`` (line number + field errors).
    Invalid bytes raise ``CsvDecodeError`` naming the line; a bad header raises ``CsvHeaderError``; a date the
    format cannot read raises ``formats.CsvDateError``;
    more than ``max_bytes`` bytes or ``max_rows`` rows raise ``ImportTooLarge``. The caller (the
    import service) decides what to do with those: it rolls back everything.

    A record that ``csv`` cannot parse (a stray or unterminated quote) is reported at the line where it
    starts, and parsing resumes at the line after that one, so one broken quote does not swallow the
    rest of the file.

Cells that a spreadsheet would run as a formula are escaped on export and unescaped here (``escape_cell``,
``unescape_cell``; see export.py).

This module holds the parser; the cells' limits and checks are in cells.py, the line reading in lines.py, the rows and
errors it yields and raises in results.py (all still importable from here).
"""

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from . import formats

# The ``name as name`` imports re-export what moved to cells.py: ``parse.<name>`` is where it was.
from .cells import BLANK_ERROR as BLANK_ERROR
from .cells import (
    DEFAULT_PRIORITY,
    DEFAULT_STATUS,
    DONE,
    MAX_ASSIGNEE,
    MAX_DESCRIPTION,
    MAX_SOURCE_KEY,
    MAX_TITLE,
    NUL_ERROR,
    PRIORITIES,
    STATUSES,
    choice_error,
    parse_labels,
    title_error,
    unescape_cell,
)
from .cells import EXPORT_COLUMNS as EXPORT_COLUMNS
from .cells import FORMULA_TRIGGERS as FORMULA_TRIGGERS
from .cells import IMPORT_COLUMNS as IMPORT_COLUMNS
from .cells import MAX_LABEL as MAX_LABEL
from .cells import MAX_LABELS_PER_ISSUE as MAX_LABELS_PER_ISSUE
from .cells import MAX_USERNAME as MAX_USERNAME
from .cells import escape_cell as escape_cell
from .lines import LineSource
from .results import CsvDecodeError, CsvHeaderError, ImportTooLarge, ParsedRow, RowError

_QUOTED = re.compile(r'"[^"]*"')


class ImportParser:
    """Validates a CSV upload row by row, in the format ``format_name`` (``auto``: recognised from the header) with
    the caller's ``mapping`` over the format's preset (formats.py). Call ``read_header()``, then iterate."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        max_bytes: int,
        max_rows: int,
        format_name: str = "native",
        mapping: formats.ImportMapping | None = None,
        now: datetime | None = None,
    ) -> None:
        # A single field may legitimately be as big as the file (and is then reported as too long).
        if csv.field_size_limit() < max_bytes + 1:
            csv.field_size_limit(max_bytes + 1)
        self._source = LineSource(chunks, max_bytes)
        self._reader: Any = None
        self._base = 0  # line number of the line before the first line of the current reader
        self.max_rows = max_rows
        self.format_name = format_name
        self.mapping = mapping or formats.ImportMapping()
        self.now = now or datetime.now(UTC)
        self.delimiter = ","
        self.layout: formats.Layout | None = None
        self.columns: dict[str, int] = {}
        self.ignored_columns: list[str] = []
        self.width = 0
        self.total_rows = 0
        # Per field, each source value no map knew and how many rows carried it (at most MAX_UNMAPPED_VALUES).
        self.unmapped_values: dict[str, dict[str, int]] = {}

    def _reader_from(self, replay: list[bytes]) -> Any:
        return self._source.reader(replay, self.delimiter)

    def _next_record(self) -> tuple[int, int, list[str]] | RowError | None:
        """The next non-blank record with its first and last line, a RowError for one csv cannot parse,
        or None at EOF. Raises CsvDecodeError for a line that is not UTF-8."""
        source = self._source
        while True:
            reader = self._reader
            start = self._base + reader.line_num + 1
            source.record_start = start
            try:
                cells = next(reader)
            except StopIteration:
                return None
            except UnicodeDecodeError:
                raise CsvDecodeError(self._base + reader.line_num + 1) from None
            except csv.Error as exc:
                # Report the record at its first line; read the lines after that one again, with a fresh reader.
                end = self._base + reader.line_num
                self._reader = self._reader_from(source.lines_between(start + 1, end))
                self._base = start
                message = "Unterminated quoted field." if "end of data" in str(exc) else f"Malformed CSV: {exc}."
                return RowError(start, {"non_field_errors": [message]})
            if cells:
                return start, self._base + reader.line_num, cells

    def _sniff(self) -> list[bytes]:
        """The lines up to the first non-blank one (the header line), read raw: its delimiter is the one of comma,
        semicolon and tab that occurs most often outside quotes (comma on a tie), and it may be at most
        ``MAX_HEADER_BYTES`` long (a 400 naming the size; nothing more is read)."""
        lines: list[bytes] = []
        for raw in self._source.stream:
            lines.append(raw)
            if len(raw) > formats.MAX_HEADER_BYTES:
                raise CsvHeaderError(
                    f"The header line is {len(raw)} bytes long; at most {formats.MAX_HEADER_BYTES} are accepted."
                )
            if raw.strip():
                break
        if lines:
            try:
                text = _QUOTED.sub("", lines[-1].decode())
            except UnicodeDecodeError:
                raise CsvDecodeError(len(lines)) from None
            counts = {delimiter: text.count(delimiter) for delimiter in (",", ";", "\t")}
            best = max(counts.values())
            if best:
                self.delimiter = next(d for d, count in counts.items() if count == best)
        return lines

    def read_header(self) -> None:
        self._reader = self._reader_from(self._sniff())
        record = self._next_record()
        if record is None:
            raise CsvHeaderError("The file is empty; a header row naming the columns is required.")
        if isinstance(record, RowError):
            raise CsvHeaderError(f"The header row (line {record.line}) is not valid CSV.")
        cells = record[2]
        try:
            layout = formats.resolve(cells, self.format_name, self.mapping)
        except formats.HeaderProblem as exc:
            raise CsvHeaderError(str(exc)) from None
        self.layout = layout
        self.ignored_columns = layout.ignored_columns
        self.columns = {name: where[0] for name, where in layout.indices.items()}
        self.width = len(cells)

    @property
    def format(self) -> str:
        return self.layout.preset.name if self.layout else self.format_name

    def _unmapped(self, name: str, raw: str) -> None:
        bucket = self.unmapped_values.setdefault(name, {})
        value = raw.strip()[:100]
        if value in bucket:
            bucket[value] += 1
        elif len(bucket) < formats.MAX_UNMAPPED_VALUES:
            bucket[value] = 1

    def __iter__(self) -> Iterator[ParsedRow | RowError]:
        """The rows, validated. The per-row work is kept in this one loop on purpose (no helper call for the common
        cells, no dict unless the row has errors, dict lookups for the value maps): it caps the speed of the whole
        import."""
        layout = self.layout
        assert layout is not None, "read_header() first"
        indices = layout.indices
        width = self.width
        max_rows = self.max_rows
        now = self.now

        def one(name: str) -> int | None:
            return indices[name][0] if name in indices else None

        ti = indices["title"][0]
        di, si, sci = one("description"), one("status"), one("status_category")
        pi, ai = one("priority"), one("assignee")
        ci, ui, ri, ki = one("created_at"), one("updated_at"), one("resolved_at"), one("source_key")
        label_indices = indices.get("labels")
        li = label_indices[0] if label_indices and len(label_indices) == 1 else None
        repeated_labels = label_indices if label_indices and len(label_indices) > 1 else None
        first_of_list = "assignee" in layout.preset.first_of_list
        date_parser, expected = formats.DATE_PARSERS[layout.preset.dates]
        parse_date = date_parser()
        header_names = layout.header_names
        names = {index: name for name, index in self.columns.items()}
        source = self._source
        make_row = ParsedRow._make
        statuses, priorities = layout.statuses, layout.priorities
        hint = "" if layout.preset is formats.NATIVE else " Map it with mapping.values.{}."
        default_status, default_priority = DEFAULT_STATUS, DEFAULT_PRIORITY
        done = DONE
        while True:
            reader = self._reader
            base = self._base
            previous = reader.line_num  # the record read next starts on the line after this one
            source.record_start = base + previous + 1
            try:
                for cells in reader:
                    line = base + previous + 1
                    previous = reader.line_num
                    source.record_start = base + previous + 1
                    if not cells:
                        continue
                    self.total_rows += 1
                    if self.total_rows > max_rows:
                        raise ImportTooLarge(f"The file has more than {max_rows} rows.")
                    if len(cells) != width:
                        yield self._width_error(cells, line, base + previous, names)
                        continue

                    errors = None
                    title = cells[ti]
                    if title and title[0] == "'":
                        title = unescape_cell(title)
                    title = title.strip()
                    if not title or len(title) > MAX_TITLE or "\x00" in title:
                        errors = {"title": [title_error(title)]}

                    description = ""
                    if di is not None:
                        description = cells[di]
                        if description:
                            if description[0] == "'":
                                description = unescape_cell(description)
                            if "\x00" in description:
                                errors = errors or {}
                                errors["description"] = [NUL_ERROR]
                            elif len(description) > MAX_DESCRIPTION:
                                errors = errors or {}
                                errors["description"] = [
                                    f"Ensure this field has no more than {MAX_DESCRIPTION} characters."
                                ]

                    status = default_status
                    raw = cells[si] if si is not None else ""
                    if raw:
                        mapped = statuses.get(raw)
                        if mapped is None:
                            mapped = statuses.get(raw.strip().lower()) if raw.strip() else default_status
                        if mapped is None:
                            self._unmapped("status", raw)
                            errors = errors or {}
                            errors["status"] = [choice_error(raw, STATUSES) + hint.format("status")]
                        else:
                            status = mapped
                    elif sci is not None and cells[sci].strip():
                        status = formats.JIRA_STATUS_CATEGORIES.get(cells[sci].strip().lower(), default_status)

                    priority = default_priority
                    if pi is not None:
                        raw = cells[pi]
                        if raw:
                            mapped = priorities.get(raw)
                            if mapped is None:
                                mapped = priorities.get(raw.strip().lower()) if raw.strip() else default_priority
                            if mapped is None:
                                self._unmapped("priority", raw)
                                errors = errors or {}
                                errors["priority"] = [choice_error(raw, PRIORITIES) + hint.format("priority")]
                            else:
                                priority = mapped

                    assignee = None
                    if ai is not None:
                        raw = cells[ai]
                        if raw:
                            if raw[0] == "'":
                                raw = unescape_cell(raw)
                            if first_of_list:
                                raw = raw.split(",", 1)[0]
                            raw = raw.strip()
                            if raw:
                                if "\x00" in raw:
                                    errors = errors or {}
                                    errors["assignee"] = [NUL_ERROR]
                                elif len(raw) > MAX_ASSIGNEE:
                                    errors = errors or {}
                                    errors["assignee"] = ["Unknown user: no user has this id, username or name."]
                                else:
                                    assignee = raw

                    labels: tuple[str, ...] = ()
                    cell = cells[li] if li is not None else ""
                    if repeated_labels is not None:
                        cell = ",".join([value for index in repeated_labels if (value := cells[index])])
                    if cell:
                        labels, label_error = parse_labels(cell)
                        if label_error:
                            errors = errors or {}
                            errors["labels"] = [label_error]

                    created: datetime | None = None
                    updated: datetime | None = None
                    resolved: datetime | None = None
                    if ci is not None or ui is not None or ri is not None:
                        dates: list[datetime | None] = []
                        for index, name in ((ci, "created_at"), (ui, "updated_at"), (ri, "resolved_at")):
                            value = cells[index].strip() if index is not None else ""
                            if not value:
                                dates.append(None)
                                continue
                            try:
                                moment = parse_date(value)
                            except (ValueError, OverflowError):
                                raise formats.CsvDateError(line, header_names[name], value, expected) from None
                            if moment > now:
                                errors = errors or {}
                                errors[name] = [f"{value[:50]} is in the future."]
                            dates.append(moment)
                        created, updated, resolved = dates
                        if resolved is not None:
                            if status not in done:
                                errors = errors or {}
                                errors["resolved_at"] = [
                                    f"Only resolved or closed issues have a resolution time (the status is {status})."
                                ]
                            elif created is not None and resolved < created:
                                errors = errors or {}
                                errors["resolved_at"] = ["The resolution time is before the creation time."]
                            elif created is None:
                                created = resolved  # nothing says when it was created: not after its resolution
                        if updated is not None and created is not None and updated < created:
                            errors = errors or {}
                            errors["updated_at"] = ["The update time is before the creation time."]

                    source_key = None
                    if ki is not None:
                        source_key = cells[ki].strip()[:MAX_SOURCE_KEY] or None

                    if errors:
                        yield RowError(line, errors)
                    else:
                        yield make_row(
                            (
                                line,
                                title,
                                description,
                                status,
                                priority,
                                assignee,
                                labels,
                                created,
                                updated,
                                resolved,
                                source_key,
                            )
                        )
                return
            except UnicodeDecodeError:
                raise CsvDecodeError(base + reader.line_num + 1) from None
            except csv.Error as exc:
                # Report the record at its first line; read the lines after that one again, with a fresh reader.
                start = base + previous + 1
                end = base + reader.line_num
                self._reader = self._reader_from(source.lines_between(start + 1, end))
                self._base = start
                self.total_rows += 1
                if self.total_rows > max_rows:
                    raise ImportTooLarge(f"The file has more than {max_rows} rows.") from None
                message = "Unterminated quoted field." if "end of data" in str(exc) else f"Malformed CSV: {exc}."
                yield RowError(start, {"non_field_errors": [message]})

    def _width_error(self, cells: list[str], line: int, last_line: int, names: dict[int, str]) -> RowError:
        width = self.width
        if len(cells) < width:
            missing = ", ".join(names[i] for i in sorted(names) if i >= len(cells)) or "unnamed columns"
            message = f"The row has {len(cells)} cells, the header {width} (missing: {missing})."
        else:
            message = f"The row has {len(cells)} cells, the header only {width} (extra cells)."
        if last_line != line:
            message += f" It spans lines {line}-{last_line}: is a quoted field left open?"
        return RowError(line, {"non_field_errors": [message]})
