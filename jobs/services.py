"""Creating jobs, running them (``jobs.tasks.run``) and the sweep of jobs whose worker died.

An import job runs ``issue_import_csv`` over its stored upload inside one transaction that also records the job's
success: the rows and ``status = succeeded`` commit together or not at all. Progress and the heartbeat cannot go
through that transaction (nothing it writes is visible before its commit), so they go through a second connection
to the same database, in autocommit (``SideChannel``). A worker killed mid-import leaves its transaction rolled
back by PostgreSQL (no row of the import stays) and a job ``running`` whose heartbeat stops: the sweep fails it
after JOBS_LEASE_SECONDS. A redelivered message (``acks_late``) finds the job no longer ``queued`` and does nothing.
"""

import csv
import io
import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import IO, Any, cast
from uuid import UUID

from django.conf import settings
from django.core.files import File
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError

from api.exceptions import DomainError
from issues import csv_io, selectors, services
from issues.access import access_for
from issues.filters import IssueFilterSet

from .models import Job, JobStatus, JobType

logger = logging.getLogger(__name__)
CHUNK_BYTES = 256 * 1024
LOST = "The worker running this job stopped before it finished; nothing of it was kept."


class JobLost(Exception):
    """The job is no longer ``running`` for this worker (the sweep failed it): its work must not commit."""


def stage_upload(chunks: Iterator[bytes], *, max_bytes: int) -> File:
    """The upload copied to a temporary file (on disk beyond 1 MB), refused past ``max_bytes`` (a 413)."""
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - handed to the storage, closed there
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            spool.close()
            raise csv_io.ImportTooLarge.bytes(max_bytes)
        spool.write(chunk)
    spool.seek(0)
    return File(spool, name="upload.csv")


def create_job(*, kind: str, user: Any, project: Any = None, params: dict[str, Any], upload: File | None = None) -> Job:
    """A queued job, handed to a worker when the caller's transaction commits (at once in autocommit)."""
    job = Job(type=kind, created_by=user, project=project, params=params)
    if upload is not None:
        job.upload.save(f"{job.pk}.csv", upload, save=False)
        upload.close()
    job.save()
    transaction.on_commit(lambda: hand_off([job.pk]))
    return job


def hand_off(ids: list[UUID]) -> int:
    """Queue ``jobs.run`` for each job: to the broker, or run here when there is none (the ``make run`` default). A
    failed hand-off is only logged: the sweep hands queued jobs off again."""
    from .tasks import run

    if settings.CELERY_TASK_ALWAYS_EAGER:
        for pk in ids:  # a thread of this process, so that the request that made the job is not held
            threading.Thread(target=_run_here, args=(str(pk),), name=f"job-{pk}", daemon=True).start()
        return len(ids)
    done = 0
    try:
        with run.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, interval_start=0, interval_step=0, timeout=2)
            for pk in ids:
                run.apply_async(args=(str(pk),), producer=producer)
                done += 1
    except Exception as exc:  # the broker is down: the sweep hands the job off later
        logger.warning("Handing off %d jobs failed (%s); the sweep will retry", len(ids) - done, exc)
    return done


def _run_here(job_id: str) -> None:
    try:
        run(job_id)
    finally:
        connections.close_all()  # this thread's own connections


class SideChannel:
    """A second connection to the job's database, in autocommit, for progress and heartbeats that must be seen while
    the job's own transaction is open. Shared by the job's thread and its heartbeat thread (hence the lock)."""

    def __init__(self, job_id: UUID) -> None:
        self.job_id = job_id
        self.lock = threading.Lock()
        self.conn = connection.get_new_connection(connection.get_connection_params())
        self.conn.autocommit = True
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"job-heartbeat-{job_id}", daemon=True)
        self.thread.start()

    def _execute(self, sql: str, params: list[Any]) -> None:
        with self.lock:
            if self.conn.closed:
                return
            try:
                with self.conn.cursor() as cursor:
                    cursor.execute(sql, params)
            except Exception as exc:  # progress is advisory: the job goes on without it
                logger.warning("Job %s: writing progress failed (%s)", self.job_id, exc)

    def _beat(self) -> None:
        while not self.stopped.wait(settings.JOBS_HEARTBEAT_SECONDS):
            self._execute(
                f"UPDATE {Job._meta.db_table} SET heartbeat_at = now() WHERE id = %s AND status = %s",
                [self.job_id, JobStatus.RUNNING.value],
            )

    def progress(self, done: int) -> None:
        """Rows done so far (never lowered), and a heartbeat."""
        self._execute(
            f"UPDATE {Job._meta.db_table} SET progress_done = GREATEST(progress_done, %s), "
            "progress_total = GREATEST(progress_total, %s), heartbeat_at = now() WHERE id = %s AND status = %s",
            [done, done, self.job_id, JobStatus.RUNNING.value],
        )

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        with self.lock:
            self.conn.close()


def claim(job_id: str) -> Job | None:
    """The job, now ``running`` for this worker; None when it is not ``queued`` (done, failed, or run elsewhere)."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return Job.objects.select_related("created_by", "project").get(pk=job_id)


def run(job_id: str) -> str | None:
    """Run a queued job to its end; returns its final status (None when there was nothing to run)."""
    job = claim(job_id)
    if job is None:
        return None
    side = SideChannel(job.pk)
    try:
        if job.type == JobType.IMPORT:
            _run_import(job, side)
        else:
            _run_export(job, side)
    except JobLost:
        logger.warning("Job %s was failed by the sweep while it ran; its work was rolled back", job.pk)
    except Exception as exc:
        _fail(job, exc)
    finally:
        side.close()
        if job.upload:
            job.upload.delete(save=False)  # the file only; the row keeps the name, harmless
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def _finish(job: Job, **fields: Any) -> None:
    """Mark the job succeeded, in the caller's transaction, only if it is still ours (``running``)."""
    done = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, finished_at=timezone.now(), error=None, **fields
    )
    if not done:
        raise JobLost(job.pk)


def _fail(job: Job, exc: Exception) -> None:
    if isinstance(exc, DomainError):
        message = str(exc.body().get("detail") or exc)
    elif isinstance(exc, APIException):
        message = str(exc.detail)
    else:
        logger.exception("Job %s failed", job.pk, exc_info=exc)
        message = "The job failed because of an internal error; nothing of it was kept."
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, error=message, finished_at=timezone.now()
    )


def _upload_chunks(job: Job) -> Iterator[bytes]:
    with job.upload.open("rb") as upload:
        while chunk := upload.read(CHUNK_BYTES):
            yield chunk


def count_rows(job: Job) -> int | None:
    """The upload's records after the header: the progress total, before the import starts (``count_csv_rows``)."""
    with job.upload.open("rb") as raw:
        return count_csv_rows(raw)


def count_csv_rows(raw: IO[bytes]) -> int | None:
    """The file's records after the header (blank lines left out), with the C ``csv`` reader and the delimiter
    the import will pick (the most frequent of comma, semicolon, tab in the header). None when the file cannot be
    read that way (the import then reports why). Also ``manage.py import_issues``'s progress total."""
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        header = ""
        while not header.strip():
            header = text.readline()
            if not header:
                return 0
        counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
        delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
        limit = csv.field_size_limit()
        csv.field_size_limit(max(limit, settings.IMPORT_ASYNC_MAX_BYTES + 1))
        return sum(1 for row in csv.reader(text, delimiter=delimiter) if any(row))
    except (UnicodeDecodeError, csv.Error, ValueError):
        return None


def import_upload(
    *, actor: Any, project: Any, chunks: Iterable[bytes], params: dict[str, Any], progress: Callable[[int], None] | None
) -> services.ImportResult:
    """The import of a stored file with a job's ``params`` (``format``, ``mapping``: its raw JSON text, ``dry_run``)
    and a job's limits and batch size: what an import job runs, and ``manage.py import_issues`` too, so that both
    mean what the API's import means. Raises what ``issue_import_csv`` raises."""
    return services.issue_import_csv(
        actor=actor,
        project=project,
        chunks=chunks,
        dry_run=bool(params.get("dry_run")),
        format_name=params.get("format") or "auto",
        mapping=csv_io.formats.parse_mapping(params.get("mapping")),
        batch_size=settings.JOBS_IMPORT_BATCH_SIZE or None,
        progress=progress,
        max_bytes=settings.IMPORT_ASYNC_MAX_BYTES,
        max_rows=settings.IMPORT_ASYNC_MAX_ROWS,
    )


def _run_import(job: Job, side: SideChannel) -> None:
    total = count_rows(job)
    if total is not None:
        Job.objects.filter(pk=job.pk).update(progress_total=total)
    assert job.project is not None  # an import job always has its project
    with transaction.atomic():
        result = import_upload(
            actor=job.created_by,
            project=job.project,
            chunks=_upload_chunks(job),
            params=job.params,
            progress=side.progress,
        )
        answer = result.as_dict()
        _finish(job, result=answer, progress_done=result.total_rows, progress_total=result.total_rows)


class _RequestLike:
    """What ``IssueFilterSet`` reads of a request (the ``project`` filter resolves keys for ``user``)."""

    def __init__(self, user: Any, query: Any) -> None:
        self.user = user
        self.query_params = query


def export_queryset(job: Job) -> Any:
    """The issues the export's query names, as the caller sees them now (the synchronous route's scope and
    filters)."""
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    for name, values in (job.params.get("query") or {}).items():
        query.setlist(name, values)
    queryset = selectors.issue_list(access_for(job.created_by))
    filterset = IssueFilterSet(data=query, queryset=queryset, request=cast(Any, _RequestLike(job.created_by, query)))
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def _run_export(job: Job, side: SideChannel) -> None:
    queryset = export_queryset(job)
    total = queryset.count()
    Job.objects.filter(pk=job.pk).update(progress_total=total)
    lines = 0
    with tempfile.TemporaryFile() as spool:
        for chunk in csv_io.export_issues(queryset):
            spool.write(chunk)
            lines += chunk.count(b"\n")  # the header and the rows (a cell's own line breaks make it an estimate)
            side.progress(min(max(lines - 1, 0), total))
        spool.seek(0)
        job.file.save(f"{job.pk}.csv", File(spool, name=f"{job.pk}.csv"), save=False)
    try:
        _finish(job, file=job.file.name, progress_done=total, progress_total=total)
    except JobLost:
        job.file.delete(save=False)
        raise


def sweep() -> int:
    """Fail running jobs whose heartbeat stopped (their worker died) and hand off again jobs queued too long (their
    hand-off to the broker failed). Returns how many jobs it touched."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    failed = Job.objects.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True), status=JobStatus.RUNNING)
    count = failed.update(status=JobStatus.FAILED, error=LOST, finished_at=now)
    waiting = now - timedelta(seconds=settings.JOBS_SWEEP_GRACE_SECONDS)
    queued = list(Job.objects.filter(status=JobStatus.QUEUED, created_at__lt=waiting).values_list("pk", flat=True))
    if queued:
        hand_off(queued)
    return count + len(queued)
