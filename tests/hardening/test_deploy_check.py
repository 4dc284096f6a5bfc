"""`manage.py check --deploy --fail-level WARNING` is clean under the documented production variables."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The production variables docs/deployment.md documents, with a strong random key.
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "tracker.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://tracker.example.com",
    "DJANGO_HTTPS": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
}


def run_check(extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "THROTTLE_"))}
    env.update(DJANGO_SETTINGS_MODULE="issue_tracker.settings", **extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_variables() -> None:
    result = run_check(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ({"DJANGO_HTTPS": "0"}, "security.W004"),  # no HSTS
        ({"DJANGO_SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"DJANGO_SECURE_COOKIES": "0"}, "security.W012"),
        ({"DJANGO_SECRET_KEY": "short-and-weak"}, "security.W009"),
    ],
)
def test_check_deploy_fails_without_each_protection(override: dict[str, str], warning: str) -> None:
    # The clean run above means something only if the check does fail when a protection is missing.
    result = run_check({**PRODUCTION_ENV, **override})
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_debug_off_without_a_secret_key_refuses_to_start() -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}
    result = run_check(env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
