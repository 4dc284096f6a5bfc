"""Fixtures of the job tests: the jobs' storage in a temporary folder, a CSV maker, and waiting for a job."""

import time
from typing import Any

import pytest

from jobs.models import Job
from tests.helpers import IMPORT_HEADER


@pytest.fixture(autouse=True)
def job_storage_dir(settings, tmp_path):
    settings.JOBS_STORAGE_DIR = str(tmp_path / "jobs")
    return tmp_path / "jobs"


def make_csv(rows: int, *, bad_every: int = 0) -> bytes:
    """``rows`` issues (every ``bad_every``-th one with an invalid status: a row error)."""
    lines = [",".join(IMPORT_HEADER)]
    for n in range(1, rows + 1):
        status = "nonsense" if bad_every and n % bad_every == 0 else "open"
        lines.append(f'Issue {n},"Body, {n}",{status},medium,,bug')
    return ("\r\n".join(lines) + "\r\n").encode()


def wait_for_job(job_id: Any, timeout: float = 60, statuses: tuple[str, ...] = ("succeeded", "failed")) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.05)
