"""Every command of README.md and docs/*.md works as written (issue 17): `make run` serves, as the README says,
and each file's shell blocks are pasted in order into one bash session, as a reader does. A command must exit
0, its curl calls must answer what the text shows (`# → 409`, else no error), and its output must match the
output the text shows (`# → {...}` on a fresh database, or an example's shape). Blocks that cannot run here are
marked `<!-- docs-test: skip — why -->` in the Markdown. See docs/testing.md, "Docs as tests"."""

from __future__ import annotations

import pytest

from tests.docs.markdown import DocsError, read_blocks
from tests.docs.session import ROOT, Run, Server, commands_of, report, run_file

DOCUMENTS = ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md"))]


def runs_something(name: str) -> bool:
    try:
        return bool(commands_of(name))
    except DocsError:
        return True  # its test reports the mistake


def check(name: str, run: Run) -> None:
    problems = report(name, run.outcomes)
    if problems:
        transcript = run.transcript[-6000:]
        pytest.fail("\n".join(problems) + f"\n\nthe end of the session:\n{transcript}", pytrace=False)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_markers_and_shown_outputs_read(name: str) -> None:
    """A misspelt marker, a marker away from its block or a shown output that is not JSON is an error, never a
    block silently skipped."""
    read_blocks(ROOT / name)


def test_the_readme_runs_its_quick_start_tour_and_roles() -> None:
    commands = [command.text for command in commands_of("README.md")]
    assert commands[0].startswith("TOKEN="), "the tour's first command sets TOKEN"
    assert ".venv/bin/python manage.py create_api_user alice --role member --password s3cret-pass" in commands
    skipped = [block for block in read_blocks(ROOT / "README.md") if block.skip_reason]
    assert len(skipped) == 2, "only the quick start's two blocks of make commands are skipped"


@pytest.mark.slow
def test_readme(documented_server: Server, readme_run: Run) -> None:
    """The quick start's and the roles section's commands and the curl tour, pasted top to bottom after `make
    run`; the tour's first command sets TOKEN to the token `make run` printed."""
    check("README.md", readme_run)
    assert readme_run.token == documented_server.token, "the tour's TOKEN is not the token `make run` printed"


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in DOCUMENTS if name != "README.md" and runs_something(name)])
def test_docs_page(name: str, documented_server: Server, readme_run: Run) -> None:
    """The page's commands, after the README's (a reader who took the tour: its issue, labels, users, TOKEN)."""
    check(name, run_file(name, documented_server))
