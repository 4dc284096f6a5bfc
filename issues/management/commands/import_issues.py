"""``manage.py import_issues FILE --project KEY --user USERNAME [--format F] [--mapping JSON] [--dry-run]
[--progress-every SECONDS]``.

The operator's CSV import: what ``POST /api/issues/import`` does with the same file and options, run by an import
job's own code (``jobs.services.import_upload``: the parsing, the formats, each row whole or not at all, the
``issues.imported`` webhook event, the job's limits IMPORT_ASYNC_MAX_BYTES/ROWS), with the answer printed on stdout
as the API's JSON. ``--user`` is required and is the import's caller: the reporter of its issues, the actor of their
``created`` events and of the webhook event; it must be allowed to import there through the API (a maintainer of
the project, or staff), so the command writes nothing the API would refuse that user. There is no implicit system
user: a timeline names who did it.

Progress goes to stderr, so stdout is the JSON alone: a tqdm bar (rows done / total, rate, time left) on a
terminal, else plain lines (a log, a pipe, cron). ``-v 0`` shows none. A file refused whole (unknown project or
user, bad format or mapping, unreadable file, not UTF-8, bad header, too large) is a ``CommandError``: one line on
stderr, exit status 1, nothing written. Row errors are not refusals: they are in the answer, exit status 0.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, TextIO, cast

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from tqdm import tqdm

from api.exceptions import DomainError
from issues import csv_io
from issues.access import Action, access_for
from issues.models import Project
from jobs import services as jobs

PROGRESS_EVERY_SECONDS = 10.0


class Progress(Protocol):
    def __call__(self, done: int) -> None: ...

    def finish(self, done: int) -> None: ...

    def close(self) -> None: ...


def refusal(exc: DomainError) -> str:
    """The API's ``detail`` for a file it refuses whole (its 400 or 413), saying that nothing was written."""
    detail = str(exc.body().get("detail") or exc)
    return detail if "Nothing was imported" in detail else f"{detail} Nothing was imported."


def progress_line(done: int, total: int | None, elapsed: float) -> str:
    """``12000/100000 rows (12%), 8,400 rows/s, 10 s left`` (``12000 rows, 8,400 rows/s`` without a total)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if not total:
        return f"{done} rows, {rate:,.0f} rows/s"
    line = f"{done}/{total} rows ({min(100, done * 100 // total)}%), {rate:,.0f} rows/s"
    if rate > 0:
        line += f", {max(0, total - done) / rate:,.0f} s left"
    return line


class PlainProgress:
    """Progress as lines for a reader that is not a terminal: after the first batch, then after a batch at least
    ``every`` seconds after the previous line (0: every batch), and the last one when the import is done."""

    def __init__(self, out: OutputWrapper, total: int | None, every: float) -> None:
        self.out = out
        self.total = total
        self.every = every
        self.started = time.monotonic()
        self.shown: tuple[int, float] | None = None  # (rows, when) of the last line

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.shown is not None and (done == self.shown[0] or now - self.shown[1] < self.every):
            return
        self.show(done, now)

    def finish(self, done: int) -> None:
        if self.shown is None or self.shown[0] != done:
            self.show(done, time.monotonic())

    def show(self, done: int, now: float) -> None:
        self.shown = (done, now)
        self.out.write(progress_line(done, self.total, now - self.started))
        self.out.flush()

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar on the terminal (``stream``): rows done / total, elapsed < left, rows/s."""

    def __init__(self, stream: TextIO, total: int | None) -> None:
        self.bar = tqdm(total=total, unit=" rows", desc="Importing", file=stream, dynamic_ncols=True, mininterval=0.2)

    def __call__(self, done: int) -> None:
        self.bar.update(done - self.bar.n)

    def finish(self, done: int) -> None:
        if self.bar.total != done:  # the count before the import could not read the file as the import did
            self.bar.total = done
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def read_chunks(raw: IO[bytes]) -> Iterator[bytes]:
    while chunk := raw.read(jobs.CHUNK_BYTES):
        yield chunk


class Command(BaseCommand):
    help = (
        "Import issues from a CSV file into a project, as POST /api/issues/import does (same formats, mapping, "
        "dry run and JSON answer, printed on stdout), with progress on stderr."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="The CSV file (UTF-8, with or without BOM).")
        parser.add_argument("--project", metavar="KEY", required=True, help="The project's key, ignoring case.")
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            required=True,
            help="Who imports: the issues' reporter and the events' actor. An active maintainer of the project "
            "or staff, as for the API.",
        )
        parser.add_argument(
            "--format",
            default="auto",
            help=f"One of {', '.join(csv_io.formats.FORMATS)} (default auto: recognised from the header).",
        )
        parser.add_argument("--mapping", metavar="JSON", help="The API's mapping parameter, as JSON text.")
        parser.add_argument("--dry-run", action="store_true", help="Check everything and write nothing.")
        parser.add_argument(
            "--progress-every",
            metavar="SECONDS",
            type=float,
            default=PROGRESS_EVERY_SECONDS,
            help="When not on a terminal, the least time between two progress lines (0: after every batch).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            format_name = csv_io.formats.parse_format(options["format"])
            csv_io.formats.parse_mapping(options["mapping"])  # refused before the file is read, as by the API
        except DomainError as exc:
            raise CommandError(refusal(exc)) from None
        user = self.importer(options["user"])
        project = self.project(options["project"], user)
        path = Path(options["file"])
        params = {"format": format_name, "mapping": options["mapping"], "dry_run": options["dry_run"]}
        progress = self.progress(path, options) if options["verbosity"] > 0 else None
        try:
            with self.open(path) as raw:
                result = jobs.import_upload(
                    actor=user, project=project, chunks=read_chunks(raw), params=params, progress=progress
                )
            if progress is not None:
                progress.finish(result.total_rows)
        except DomainError as exc:  # the file refused whole: not UTF-8, a bad header, too large
            raise CommandError(refusal(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}. Nothing was imported.") from None
        except Project.DoesNotExist:
            raise CommandError(f"Project {project.key} was deleted meanwhile. Nothing was imported.") from None
        finally:
            if progress is not None:
                progress.close()  # a bar left as it stood, before the error is printed
        self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))

    def importer(self, username: str) -> Any:
        user = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username.strip()!r}. Nothing was imported.")
        return user

    def project(self, key: str, user: Any) -> Project:
        """The project named ``key`` (ignoring case) if ``user`` may import there through the API."""
        wanted = key.strip().upper()
        project = Project.objects.filter(key=wanted).first()
        if project is None:
            raise CommandError(f"Unknown project {wanted!r}. Nothing was imported.")
        if not access_for(user).can(project.pk, Action.MANAGE):
            raise CommandError(
                f"User {user.get_username()!r} may not import into project {project.key}: only its maintainers and "
                "staff may. Nothing was imported."
            )
        return project

    def open(self, path: Path) -> IO[bytes]:
        try:
            return path.open("rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}. Nothing was imported.") from None

    def progress(self, path: Path, options: dict[str, Any]) -> Progress:
        """Progress for stderr, its total counted first (one pass of the C ``csv`` reader, as a job counts)."""
        with self.open(path) as raw:
            total = jobs.count_csv_rows(raw)
        if self.stderr.isatty():
            return BarProgress(cast(TextIO, self.stderr._out), total)
        return PlainProgress(self.stderr, total, max(0.0, options["progress_every"]))
