"""`manage.py` as documented (issue 17): a configuration mistake is one clear line on stderr and exit status 1,
never a traceback; the checkout's .env (development) never outweighs the environment."""

import os
import subprocess
import sys

import pytest

from tests.docs.session import ROOT

NO_SECRET = "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "issue_tracker.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        # The database cannot be reached (nothing listens on port 1).
        (
            {"DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://postgres:secret@127.0.0.1:1/tracker"},
            ["migrate"],
            "manage.py: DATABASE_URL postgres://postgres:***@127.0.0.1:1/tracker: could not connect to 127.0.0.1:1 "
            "(connection refused). Is PostgreSQL running there?",
        ),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "mysql://u@db/tracker"}, ["check"], "must name a PostgreSQL database"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "not a url"}, ["check"], "is not a PostgreSQL URL"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://u@h:port/db"}, ["check"], "is not a PostgreSQL URL"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "postgres://"}, ["migrate"], "Please supply the NAME"),
        # Production mode without a secret; DJANGO_DEBUG=0 in the environment also keeps .env out.
        ({"DJANGO_DEBUG": "0", "DATABASE_URL": "postgres://u@h/db"}, ["create_api_user", "alice"], NO_SECRET),
        ({"DJANGO_DEBUG": "0", "DATABASE_URL": "postgres://u@h/db"}, ["migrate"], NO_SECRET),
    ],
)
def test_a_configuration_mistake_is_one_line(env, args, expected):
    result = manage(*args, **env)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("manage.py: ") and expected in result.stderr, result.stderr
    assert "secret@" not in result.stderr  # passwords are masked


def test_traceback_still_shows_the_traceback():
    result = manage("check", "--traceback", DJANGO_DEBUG="0", DATABASE_URL="postgres://u@h/db")
    assert result.returncode != 0 and "Traceback" in result.stderr and NO_SECRET in result.stderr


def test_a_mistake_in_a_command_is_not_hidden():
    """Only configuration errors are shortened: a command's own error reads as before (here Django's)."""
    result = manage("create_api_user", "alice", "--role", "pope", DJANGO_DEBUG="1", DATABASE_URL="postgres://u@h/db")
    assert result.returncode == 2 and "invalid choice: 'pope'" in result.stderr


def test_the_checkouts_env_file_is_read_and_the_environment_wins():
    """`make install` wrote .env (DJANGO_DEBUG=1, a secret): the README's manage.py commands need nothing else;
    a variable set in the environment wins over it, and DJANGO_DEBUG=0 keeps all of it out."""
    if not (ROOT / ".env").is_file():
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("no .env in CI: `make install` writes it", pytrace=False)
        pytest.skip("no .env: `make install` writes it")
    show = [
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY[:4])",
    ]
    assert manage(*show).stdout.split() == ["True", "dev-"]
    assert manage(*show, DJANGO_SECRET_KEY="from-the-environment").stdout.split() == ["True", "from"]
    refused = manage(*show, DJANGO_DEBUG="0", DATABASE_URL="postgres://u@h/db")
    assert refused.returncode == 1 and NO_SECRET in refused.stderr


def test_the_server_never_reads_the_checkouts_env_file():
    """gunicorn imports the WSGI application, which does not read .env: a server left without DJANGO_DEBUG runs with
    debug off (and so needs its own secret key), whatever a development .env in the checkout says."""
    if not (ROOT / ".env").is_file():
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("no .env in CI: `make install` writes it", pytrace=False)
        pytest.skip("no .env: `make install` writes it")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")}
    env.update({"DJANGO_SECRET_KEY": "set-by-the-server", "DATABASE_URL": "postgres://u@h/db"})
    code = "import issue_tracker.wsgi; from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "set-by-the-server"]
