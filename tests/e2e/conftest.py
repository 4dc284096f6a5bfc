"""Playwright driving Debian's Chromium (never a browser Playwright downloads) against a live server.

Without Chromium or the playwright package the browser tests skip on a developer machine, saying why,
and fail in CI (CI=true), where .ci/run installs both. Screenshots of each step go to test-artifacts/e2e/.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.db import connections

from tests import helpers

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    candidates = [os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def unavailable(reason: str) -> NoReturn:
    helpers.unavailable(
        "browser tests", reason, "install Debian's chromium and `pip install -r requirements.txt` to run them"
    )


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    executable = chromium_path()
    if executable is None:
        unavailable("no Chromium at /usr/bin/chromium (or CHROMIUM_PATH)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
    # browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            # The ORM calls made while Playwright's loop runs got their own connection: close it here,
            # or it outlives the test and blocks dropping the PostgreSQL test database.
            connections.close_all()
            instance.close()


# Every page reports its Content-Security-Policy violations to the test (through a binding, which the policy
# cannot block); console errors and uncaught script errors are kept as well.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation({
    page: document.location.href,
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    sample: event.sample,
    source: event.sourceFile + ":" + event.lineNumber,
  });
});
"""


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser page. ``page.csp_violations``, ``page.console_errors`` and ``page.script_errors`` collect
    what happened on every page it loads; a test that ends with a CSP violation fails at teardown."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.shots = []  # type: ignore[attr-defined]
    page.csp_violations = []  # type: ignore[attr-defined]
    page.console_errors = []  # type: ignore[attr-defined]
    page.script_errors = []  # type: ignore[attr-defined]
    page.expose_function("reportCspViolation", lambda violation: page.csp_violations.append(violation))
    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    yield page
    violations = list(page.csp_violations)
    context.close()
    if violations:
        pytest.fail(f"Content-Security-Policy violations: {violations}", pytrace=False)


@pytest.fixture
def shot(page: Any, request: pytest.FixtureRequest) -> Any:
    """``shot("step")`` saves a full-page screenshot as test-artifacts/e2e/<test>-<n>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
