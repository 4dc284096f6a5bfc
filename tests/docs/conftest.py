"""Fixtures of the docs tests: the server `make run` serves, and the README's tour run once against it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.docs.session import Run, Server, make_run, run_file


@pytest.fixture(scope="session")
def documented_server() -> Iterator[Server]:
    missing = [tool for tool in ("make", "bash", "curl") if shutil.which(tool) is None]
    if missing:
        reason = f"the docs tests need {', '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason} (CI must have them)", pytrace=False)
        pytest.skip(f"{reason}: install them (Debian: apt-get install {' '.join(missing)})")
    with make_run() as server:
        yield server


@pytest.fixture(scope="session")
def readme_run(documented_server: Server) -> Run:
    """The README's commands, run once; the other files' commands come after them (they use its issue, labels
    and users, as a reader who took the tour has them)."""
    return run_file("README.md", documented_server)
