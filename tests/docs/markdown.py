"""The shell blocks of the Markdown documentation, as the docs tests run them (see docs/testing.md, "Docs as tests").

A fenced block tagged ``sh``, ``bash`` or ``shell`` is a list of commands to paste into a terminal. Each command
(a line, with its ``\\`` continuations and anything bash needs to close a quote or a ``$(``) may show what it
answers, in a comment right after it or at its end:

- ``# → 409`` / ``# → {"version": 2, ...}`` / ``# → 409 {"code": "version_conflict", ...}``: what it answers on a
  fresh database: the HTTP status of its curl calls (else any status below 400 will do) and the JSON body, where
  ``...`` stands for more items or keys and ``"..."`` for any value;
- ``# {"resolved_count": 6, ...}`` (JSON without the arrow, on the lines after the command): an example from other
  data, so only its shape is checked: the same keys, and values of the same JSON types (``null`` fits anything).

A block that cannot run here is marked right before its fence with ``<!-- docs-test: skip — why -->``.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_LANGUAGES = {"sh", "bash", "shell"}
# Transcripts (``$ cmd`` then its output) are not a format these tests read; say so rather than skip them silently.
UNSUPPORTED_LANGUAGES = {"console", "shell-session", "shellsession", "zsh", "fish"}
MARKER = re.compile(r"\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*")  # a line of its own
SKIP = re.compile(r"skip\s*(?:—|–|-|:)\s*(?P<reason>\S.*)")
FENCE = re.compile(r"^(?P<fence>```+)\s*(?P<lang>[\w+-]*)")
ARROW = "→"
MORE = "\u2026more"  # what an unquoted ``...`` in a shown output becomes


class DocsError(Exception):
    """A block or a shown output these tests cannot read: a mistake in the documentation."""


@dataclass
class Command:
    line: int  # of its first line in the file, 1-based
    text: str
    status: int | None = None  # → NNN
    output: Any = None  # → JSON (a pattern)
    has_output: bool = False
    example: Any = None  # JSON shown without the arrow (a shape)
    has_example: bool = False


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence
    language: str
    skip_reason: str | None
    commands: list[Command] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.skip_reason is None


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, with its marker and, for shell blocks, its commands."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str] | None = None  # a skip marker waiting for its fence: (line, reason)
    index = 0
    while index < len(lines):
        text = lines[index]
        marker = MARKER.fullmatch(text)
        if marker:
            skip = SKIP.fullmatch(marker.group("body"))
            if not skip:
                raise DocsError(
                    f"{path}:{index + 1}: unknown docs-test marker {marker.group(0)!r}: "
                    "write <!-- docs-test: skip — why it cannot run here -->"
                )
            if pending:
                raise DocsError(f"{path}:{pending[0]}: a docs-test marker with no code block after it")
            pending = (index + 1, skip.group("reason"))
            index += 1
            continue
        fence = FENCE.match(text)
        if not fence:
            if pending and text.strip():
                raise DocsError(f"{path}:{pending[0]}: a docs-test marker must come right before a code block")
            index += 1
            continue
        language = fence.group("lang").lower()
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence.group("fence")):
            end += 1
        if end == len(lines):
            raise DocsError(f"{path}:{index + 1}: a code block that is never closed")
        if language in UNSUPPORTED_LANGUAGES:
            raise DocsError(
                f"{path}:{index + 1}: a ```{language} block: the docs tests run ```sh blocks (commands as "
                "pasted, outputs as `# →` comments); write it so, or mark it <!-- docs-test: skip — why -->"
            )
        block = Block(path, index + 1, language, pending[1] if pending else None)
        if block.runs:
            block.commands = read_commands(path, lines[index + 1 : end], first_line=index + 2)
        blocks.append(block)
        pending = None
        index = end + 1
    if pending:
        raise DocsError(f"{path}:{pending[0]}: a docs-test marker with no code block after it")
    return blocks


def complete(text: str) -> bool:
    """Whether bash reads ``text`` as complete commands (no open quote, ``$(``, ``if`` ...)."""
    if text.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def read_commands(path: Path, lines: list[str], first_line: int) -> list[Command]:
    """The commands of one shell block, with the outputs shown for them."""
    commands: list[Command] = []
    last: Command | None = None  # the command the comment lines right after it may show the output of
    shown: list[str] = []  # comment lines of a shown example not yet complete
    index = 0
    while index < len(lines):
        number, text = first_line + index, lines[index]
        stripped = text.strip()
        if not stripped:
            if shown:
                raise DocsError(f"{path}:{number}: a shown output that is not JSON: {' '.join(shown)}")
            last = None
            index += 1
            continue
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
            if last is not None and (shown or comment.startswith(ARROW) or comment[:1] in "[{"):
                shown.append(comment)
                if attach(path, number, last, " ".join(shown)):
                    shown = []
            elif last is not None:
                last = None  # prose: later comments show nothing of the command above
            index += 1
            continue
        if shown:
            raise DocsError(f"{path}:{number}: a shown output that is not JSON: {' '.join(shown)}")
        start = index
        command = text
        while not complete(command):
            index += 1
            if index == len(lines):
                raise DocsError(f"{path}:{first_line + start}: an unfinished command: {command}")
            command += "\n" + lines[index]
        last = Command(first_line + start, command)
        commands.append(last)
        trailing = trailing_comment(command) or ""
        if trailing.startswith(ARROW) and not attach(path, first_line + index, last, trailing):
            raise DocsError(f"{path}:{first_line + index}: a shown output that is not JSON: {trailing}")
        index += 1
    if shown:
        raise DocsError(f"{path}:{first_line + len(lines) - 1}: a shown output that is not JSON: {' '.join(shown)}")
    return commands


def attach(path: Path, number: int, command: Command, shown: str) -> bool:
    """Record ``shown`` (the text of one or more comment lines) as what ``command`` answers; False while the JSON
    it starts is not complete yet (it goes on on the next comment line)."""
    arrow = shown.startswith(ARROW)
    rest = shown.removeprefix(ARROW).strip()
    if arrow:
        status = re.match(r"(\d{3})\b\s*", rest)
        if status:
            command.status = int(status.group(1))
            rest = rest[status.end() :]
        if rest[:1] not in ("{", "["):
            return True  # a status and prose, or prose only
    try:
        value = parse_shown(rest)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Expecting") and exc.pos >= len(make_json(rest)) - 1:
            return False  # cut: the rest is on the next comment line
        raise DocsError(f"{path}:{number}: cannot read the shown output {rest!r}: {exc}") from None
    if arrow:
        command.output, command.has_output = value, True
    else:
        command.example, command.has_example = value, True
    return True


def trailing_comment(command: str) -> str | None:
    """The text of the comment at the end of ``command`` (after an unquoted ``#`` that starts a word)."""
    quote = None
    escaped = False
    for position, char in enumerate(command):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or command[position - 1].isspace()):
            return command[position + 1 :].split("\n", 1)[0].strip()
    return None


def make_json(text: str) -> str:
    """``text`` with each unquoted ``...`` turned into JSON: a ``MORE`` item in a list, a ``MORE`` key in an
    object."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(text):
        char = text[position]
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif text.startswith("...", position):
            out.append(f'"{MORE}": null' if stack[-1:] == ["{"] else f'"{MORE}"')
            position += 3
            continue
        else:
            if char == '"':
                in_string = True
            elif char in "[{":
                stack.append(char)
            elif char in "]}" and stack:
                stack.pop()
            out.append(char)
        position += 1
    return "".join(out)


def parse_shown(text: str) -> Any:
    return json.loads(make_json(text))


# --- comparing an answer with what the documentation shows -------------------------------------------------------


def mismatch(pattern: Any, actual: Any, where: str = "") -> str | None:
    """Why ``actual`` does not match a ``# →`` output (None when it does). ``...`` is more items or keys,
    ``"..."`` any value."""
    here = where or "the answer"
    if pattern == "...":
        return None
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return f"{here} is {json.dumps(actual)[:80]}, not an object"
        more = MORE in pattern
        keys = [key for key in pattern if key != MORE]
        missing = [key for key in keys if key not in actual]
        if missing:
            return f"{here} has no {', '.join(missing)}"
        extra = [key for key in actual if key not in pattern]
        if extra and not more:
            return f"{here} has {', '.join(extra)} too"
        for key in keys:
            found = mismatch(pattern[key], actual[key], f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(pattern, list):
        if not isinstance(actual, list):
            return f"{here} is {json.dumps(actual)[:80]}, not a list"
        items = [item for item in pattern if item != MORE]
        if len(actual) < len(items) or (MORE not in pattern and len(actual) != len(items)):
            shown = f"{len(items)} or more" if MORE in pattern else str(len(items))
            return f"{here} has {len(actual)} items, the documentation shows {shown}"
        for number, item in enumerate(items):
            found = mismatch(item, actual[number], f"{where}[{number}]")
            if found:
                return found
        return None
    if pattern != actual or isinstance(pattern, bool) != isinstance(actual, bool):
        return f"{here} is {json.dumps(actual)}, the documentation shows {json.dumps(pattern)}"
    return None


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else "null"


def shape_mismatch(example: Any, actual: Any, where: str = "") -> str | None:
    """Why ``actual`` does not have the shape of an example shown on other data (None when it does)."""
    here = where or "the answer"
    if example is None or actual is None or example == MORE:
        return None
    if json_type(example) != json_type(actual):
        return f"{here} is a {json_type(actual)}, the example shows a {json_type(example)}"
    if isinstance(example, dict):
        keys = {key for key in example if key != MORE}
        missing, extra = keys - set(actual), set(actual) - keys
        if missing or (extra and MORE not in example):
            return f"{here} has the keys {sorted(actual)}, the example {sorted(keys)}"
        for key in keys:
            found = shape_mismatch(example[key], actual[key], f"{where}.{key}" if where else key)
            if found:
                return found
    if isinstance(example, list):
        templates = [item for item in example if item != MORE]
        if templates:
            for number, item in enumerate(actual):
                found = shape_mismatch(templates[0], item, f"{where}[{number}]")
                if found:
                    return found
    return None
