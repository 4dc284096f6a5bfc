"""The physical lines of an upload for ``csv.reader``: ``LineSource`` splits a stream of byte chunks into lines,
decodes them as strict UTF-8 and keeps the lines of the record being read, so that the parser can read again after
a record ``csv`` cannot parse."""

import csv
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from .results import ImportTooLarge


class LineSource:
    """The physical lines of a byte stream for csv.reader, decoded as strict UTF-8 by ``map`` (no Python
    frame per line). Lines are split on LF, CRLF or CR, on bytes, in blocks of complete lines; the blocks
    that hold the record being read are kept, so a record csv cannot parse can be read again from the line
    after its first one. Raises ImportTooLarge past ``max_bytes``."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int) -> None:
        self._chunks = chunks
        self._max_bytes = max_bytes
        self._window: deque[tuple[int, list[bytes]]] = deque()  # (first line number, lines)
        self.record_start = 1  # blocks ending before this line are no longer needed
        self.stream = chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[bytes]]:
        total = 0
        tail = b""
        next_line = 1
        window = self._window
        for chunk in self._chunks:
            if not chunk:
                continue
            total += len(chunk)
            if total > self._max_bytes:
                raise ImportTooLarge.bytes(self._max_bytes)
            lines = (tail + chunk if tail else chunk).splitlines(keepends=True)
            # The last piece is complete only if it ends with LF (a final CR may be the first half of CRLF).
            tail = b"" if lines[-1].endswith(b"\n") else lines.pop()
            if lines:
                next_line = self._keep(window, next_line, lines)
                yield lines
        if tail:
            self._keep(window, next_line, [tail])
            yield [tail]

    def _keep(self, window: deque, first: int, lines: list[bytes]) -> int:
        if first == 1 and lines[0].startswith(b"\xef\xbb\xbf"):
            lines[0] = lines[0][3:]
        while window and window[0][0] + len(window[0][1]) <= self.record_start:
            window.popleft()
        window.append((first, lines))
        return first + len(lines)

    def lines_between(self, first: int, last: int) -> list[bytes]:
        """The raw lines numbered ``first`` to ``last`` (inclusive), from the kept blocks."""
        found: list[bytes] = []
        for start, lines in self._window:
            low, high = max(first, start), min(last, start + len(lines) - 1)
            if low <= high:
                found.extend(lines[low - start : high - start + 1])
        return found

    def reader(self, replay: list[bytes], delimiter: str = ",") -> "Any":
        return csv.reader(map(bytes.decode, chain(replay, self.stream)), delimiter=delimiter, strict=True)
