"""The checkout's development settings: ``.env``, written by ``make install`` (git-ignored), read by ``manage.py``
only — never by the WSGI/ASGI application (a server is configured by its environment) nor by the tests.

Never over a variable the environment sets, and not at all when the environment turns debug off."""

import os
from pathlib import Path

from dotenv import dotenv_values

DOTENV = Path(__file__).resolve().parent.parent / ".env"
TRUE = {"1", "true", "yes", "on"}


def load_development_env(path: Path = DOTENV) -> None:
    """Fill unset environment variables from ``path`` when it exists and debug is (or would be) on."""
    values = dotenv_values(path) if path.is_file() else {}
    if (os.environ.get("DJANGO_DEBUG", values.get("DJANGO_DEBUG")) or "").strip().lower() not in TRUE:
        return
    for name, value in values.items():
        if value is not None:
            os.environ.setdefault(name, value)
