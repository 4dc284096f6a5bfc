"""Renders deploy/nginx.conf: fills in its ${TRACKER_...} placeholders and nothing else.

    python3 deploy/render_nginx.py > /etc/nginx/nginx.conf                    # the production defaults
    TRACKER_SERVER_NAME=tracker.acme.test python3 deploy/render_nginx.py ...  # any placeholder from the environment
    python3 deploy/render_nginx.py --set TRACKER_UPSTREAM=unix:/run/tracker/gunicorn.sock

nginx's own variables ($host, $remote_addr, ...) are left alone: only the names in DEFAULTS are replaced, and a
${TRACKER_...} the renderer does not know is an error. The tests render the same file with their own ports and
paths (tests/servers.py).
"""

import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("nginx.conf")

DEFAULTS = {
    "TRACKER_NGINX_USER": "www-data",
    "TRACKER_PID_FILE": "/run/nginx.pid",
    "TRACKER_LOG_DIR": "/var/log/nginx",
    "TRACKER_TEMP_DIR": "/var/lib/nginx",
    "TRACKER_HTTP_LISTEN": "80",
    "TRACKER_HTTPS_LISTEN": "443",
    "TRACKER_SERVER_NAME": "tracker.example.com",
    "TRACKER_TLS_CERT": "/etc/letsencrypt/live/tracker.example.com/fullchain.pem",
    "TRACKER_TLS_KEY": "/etc/letsencrypt/live/tracker.example.com/privkey.pem",
    "TRACKER_UPSTREAM": "127.0.0.1:8000",
}

PLACEHOLDER = re.compile(r"\$\{(TRACKER_[A-Z0-9_]+)\}")


def render(values: dict[str, str] | None = None, template: Path = TEMPLATE) -> str:
    """The template with DEFAULTS, then ``values``, filled in. Values may not contain newlines or ``;``."""
    merged = {**DEFAULTS, **(values or {})}
    unknown = sorted(set(merged) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown placeholders: {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    for name, value in merged.items():
        if not value or any(char in value for char in ";{}\n'\""):
            raise ValueError(f"{name}={value!r}: empty, or contains a character nginx would misread")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in merged:
            raise ValueError(f"{template.name} uses ${{{name}}}, which the renderer does not know")
        return merged[name]

    # The header comment lists the placeholders by name: keep those lines as written.
    lines = template.read_text().splitlines(keepends=True)
    return "".join(line if line.lstrip().startswith("#") else PLACEHOLDER.sub(substitute, line) for line in lines)


def main(argv: list[str]) -> int:
    values = {name: os.environ[name] for name in DEFAULTS if os.environ.get(name)}
    args = iter(argv)
    for arg in args:
        if arg == "--set":
            arg = next(args, "")
        elif arg.startswith("--set="):
            arg = arg.removeprefix("--set=")
        else:
            print(__doc__, file=sys.stderr)
            return 2
        name, sep, value = arg.partition("=")
        if not sep:
            print(f"--set expects NAME=value, got {arg!r}", file=sys.stderr)
            return 2
        values[name] = value
    try:
        sys.stdout.write(render(values))
    except ValueError as exc:
        print(f"render_nginx: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
