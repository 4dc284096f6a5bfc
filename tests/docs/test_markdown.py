"""How the docs tests read Markdown and compare answers with what the text shows (tests/docs/markdown.py)."""

from pathlib import Path

import pytest

from tests.docs.markdown import DocsError, mismatch, parse_shown, read_blocks, shape_mismatch, trailing_comment


def blocks_of(tmp_path: Path, text: str):
    path = tmp_path / "page.md"
    path.write_text(text)
    return read_blocks(path)


def test_commands_continuations_and_shown_outputs(tmp_path):
    (block,) = blocks_of(
        tmp_path,
        "```sh\n"
        "# prose before a command shows nothing\n"
        "ID=$(curl -s $API/issues \\\n  -d '{\"a\": 1}' | python3 -c 'print(1)')\n"
        "curl -X PATCH $API/issues/1 -d '{\"version\": 1}'  # → 409 when stale\n"
        "curl $API/issues/1\n"
        '# → {"status": "open", ...}\n'
        'curl "$API/reports/latency"\n'
        '# {"count": 6,\n'
        '#  "mean": 1.5}\n'
        "```\n",
    )
    first, stale, detail, report = block.commands
    assert first.text.count("\n") == 1 and first.status is None and not first.has_output
    assert stale.status == 409 and not stale.has_output
    assert detail.has_output and detail.output == {"status": "open", "\u2026more": None}
    assert report.has_example and report.example == {"count": 6, "mean": 1.5}


def test_a_skip_marker_needs_a_reason_and_a_block(tmp_path):
    (block,) = blocks_of(tmp_path, "<!-- docs-test: skip — production host -->\n```sh\nnginx -t\n```\n")
    assert block.skip_reason == "production host" and not block.runs and block.commands == []
    for text in (
        "<!-- docs-test: skip -->\n```sh\nls\n```\n",  # no reason
        "<!-- docs-test: skp — typo -->\n```sh\nls\n```\n",
        "<!-- docs-test: skip — why -->\nSome prose.\n\n```sh\nls\n```\n",  # not right before the block
        "```console\n$ ls\n```\n",  # a transcript: not a format the tests read
        '```sh\ncurl $API\n# → {"open": \n```\n',  # a shown output that does not parse
    ):
        with pytest.raises(DocsError):
            blocks_of(tmp_path, text)


def test_trailing_comments_outside_quotes():
    assert trailing_comment('curl -d \'{"c": "#1d76db"}\'  # → 201') == "→ 201"
    assert trailing_comment('echo "a # b" \\# c') is None
    assert trailing_comment("curl $API#anchor") is None


def test_exact_outputs_with_ellipses():
    shown = parse_shown('{"count": 1, "results": [{"title": "Typo", ...}], "next": "..."}')
    answer = {"count": 1, "results": [{"title": "Typo", "id": 5}], "next": "http://x"}
    assert mismatch(shown, answer) is None
    assert "count is 2" in mismatch(shown, {**answer, "count": 2})
    assert "2 items" in mismatch(shown, {**answer, "results": [{"title": "Typo"}, {"title": "Export"}]})
    assert "has page too" in mismatch(shown, {**answer, "page": 1})
    assert mismatch(parse_shown("[1, ...]"), [1, 2, 3]) is None
    assert mismatch(parse_shown("true"), 1) is not None


def test_examples_check_the_shape_only():
    example = parse_shown('[{"assignee": 3, "username": "alice"}, ...]')
    assert shape_mismatch(example, []) is None
    assert shape_mismatch(example, [{"assignee": 9, "username": "bob"}]) is None
    assert "keys" in shape_mismatch(example, [{"assignee": 9, "user": "bob"}])
    assert "string" in shape_mismatch(example, [{"assignee": 9, "username": 4}])
    assert shape_mismatch(parse_shown('{"mean": 2.5}'), {"mean": None}) is None
