"""What every devdb module shares: the one-line error meant for the user, and the notes printed to stderr."""

from __future__ import annotations

import sys


class DevDbError(Exception):
    """An error meant for the user as one line: the command prints it and exits non-zero."""


def note(message: str) -> None:
    print(f"devdb: {message}", file=sys.stderr, flush=True)
