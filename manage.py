#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

It reads the checkout's ``.env`` first (development only, ``issue_tracker/devenv.py``; docs/configuration.md).
A mistake in the configuration (no secret key with debug off, a DATABASE_URL that is not PostgreSQL or does not
parse, a database that cannot be reached) ends the command with one line on stderr and exit status 1, not a
traceback; ``--traceback`` shows the traceback. Every other exception propagates as usual.
"""

import os
import re
import sys
import traceback

PROG = "manage.py"


def masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return re.sub(r"^([^:/]+://[^:/@]*:)[^@]*@", r"\1***@", url)


def database_described() -> str:
    """Which database the settings point at: DATABASE_URL, or the embedded cluster's URL when it is unset."""
    from django.conf import settings

    if os.environ.get("DATABASE_URL"):
        return f"DATABASE_URL {masked(os.environ['DATABASE_URL'])}"
    url = getattr(settings, "DATABASE_URL", "")
    return f"the embedded PostgreSQL {masked(url)} (DATABASE_URL is unset)"


def connection_failure(exc: BaseException) -> str | None:
    """One line for a failure to connect to the database (None for any other OperationalError: a statement
    that failed once connected is not a configuration error)."""
    if not any(frame.name == "get_new_connection" for frame in traceback.extract_tb(exc.__traceback__)):
        return None
    from django.db import connections

    params = connections["default"].settings_dict
    where = f"{params.get('HOST') or 'localhost'}:{params.get('PORT') or 5432}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    failed = [line for line in lines if "failed:" in line]
    reason = (failed[0].rsplit("failed:", 1)[1] if failed else lines[0] if lines else type(exc).__name__).strip()
    reason = " ".join(reason.removeprefix("FATAL:").split())
    reason = reason[:1].lower() + reason[1:]
    hint = ""
    if any(word in reason.lower() for word in ("refused", "timeout", "timed out", "no such file")):
        hint = " Is PostgreSQL running there? (`make db-start` starts the embedded one.)"
    return f"{database_described()}: could not connect to {where} ({reason}).{hint}"


def configuration_error(exc: BaseException) -> str | None:
    """The one line for a configuration error, or None when ``exc`` is not one."""
    import dj_database_url
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import OperationalError

    if isinstance(exc, ImproperlyConfigured):
        message = " ".join(str(exc).split())
        if "DATABASES" in message and os.environ.get("DATABASE_URL"):  # e.g. postgres:// without a database name
            return f"DATABASE_URL {masked(os.environ['DATABASE_URL'])}: {message}"
        return message
    if isinstance(exc, dj_database_url.UnknownSchemeError | dj_database_url.ParseError):
        url = masked(os.environ.get("DATABASE_URL", ""))
        return f"DATABASE_URL {url!r} is not a PostgreSQL URL (postgres://user:password@host:5432/name)."
    if isinstance(exc, OperationalError):
        return connection_failure(exc)
    return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")
    from django.core.management import execute_from_command_line

    from issue_tracker.devenv import load_development_env

    load_development_env()

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        line = None if "--traceback" in sys.argv else configuration_error(exc)
        if line is None:
            raise
        sys.exit(f"{PROG}: {line}")


if __name__ == "__main__":
    main()
