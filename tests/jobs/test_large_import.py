"""Acceptance 4 at full size: a 100,000-row import as a job, on real processes (a gunicorn web host hands it to
Redis, a ``celery -A issue_tracker worker -B`` runs it). Progress read through ``GET /api/jobs/{id}`` only rises and
ends at the total; the job's answer is the synchronous import's for the same file; a worker SIGKILLed halfway
through leaves the project without one row of the import and the job ``failed`` once the sweep notices."""

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from issues.models import Issue
from jobs.models import Job
from jobs.services import LOST
from tests import helpers
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.hooks.workers import REDIS_URL, app_env, celery_worker, redis_available
from tests.jobs.conftest import wait_for_job
from tests.servers import GunicornServer, gunicorn_server, tail

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = 100_000
# The second worker's log line for a ``jobs.run`` that found nothing to do (``services.run`` returned None).
REDELIVERED = re.compile(r"Task jobs\.run\[[0-9a-f-]+\] succeeded in [0-9.e-]+s: None")
HEADER = ["title", "description", "status", "priority", "assignee", "labels", "sprint"]


def big_csv(rows: int = ROWS) -> bytes:
    """``rows`` records that exercise every part of the import's answer: an ignored column (``sprint``), a
    two-line description every 50th row (file lines and records then differ), an invalid status every 97th row
    and an unknown assignee every 89th (over 1,000 row errors: the list is truncated; ``ghost`` lands in
    ``unmapped_values``), and labels made on the fly."""
    lines = [",".join(HEADER)]
    priorities = ("low", "medium", "high")
    labels = ("bug", '"bug;ui"', "")
    for n in range(1, rows + 1):
        status = "nonsense" if n % 97 == 0 else ("closed" if n % 5 == 0 else "open")
        assignee = "ghost" if n % 89 == 0 else ("boss" if n % 7 == 0 else "")
        description = f'"Line one of {n}\r\nline two"' if n % 50 == 0 else f'"Body, {n}"'
        lines.append(f"Issue {n},{description},{status},{priorities[n % 3]},{assignee},{labels[n % 3]},S{n % 4}")
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture(scope="module")
def body() -> bytes:
    return big_csv()


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jobs' storage folder, shared by the web host (which stores the upload) and the workers (which read it)."""
    return tmp_path_factory.mktemp("jobs-storage")


def jobs_env(storage: Path, lease_seconds: int) -> dict[str, str]:
    """The import's own batch size (5,000 rows: 20 progress steps), a fast heartbeat and sweep."""
    return {
        "JOBS_STORAGE_DIR": str(storage),
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_LEASE_SECONDS": str(lease_seconds),
        "JOBS_SWEEP_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def queue() -> str:
    return f"large-import-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def web(queue: str, shared_dir: Path, django_db_setup: Any, django_db_blocker: Any) -> Iterator[GunicornServer]:
    """One web host for the module, handing jobs to ``queue``; each test starts the worker(s) it needs on it."""
    if not redis_available():
        helpers.unavailable("job worker tests", f"no Redis at {REDIS_URL}", "start redis-server")
    env = {**app_env(queue), **jobs_env(shared_dir, lease_seconds=3)}
    with django_db_blocker.unblock(), gunicorn_server(workers=2, extra_env=env) as server:
        yield server


@pytest.fixture
def boss(db):
    user = UserFactory(username="boss")
    for key in ("BIG", "SYN"):
        add_member(user, ProjectFactory(key=key), "maintainer")
    return user


def api(web: GunicornServer, user: Any) -> Any:
    session = web.session()
    session.headers.update(helpers.auth_header(user))
    return session


def start_job(session: Any, web: GunicornServer, body: bytes, project: str) -> str:
    response = session.post(
        f"{web.url}/api/issues/import?project={project}",
        data=body,
        headers={"Content-Type": "text/csv", "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text[:500]
    job_id = response.json()["job"]["id"]
    assert response.headers["Location"].endswith(f"/api/jobs/{job_id}")
    return job_id


def issues_of(key: str) -> Any:
    return Issue.objects.filter(project__key=key)


def writing_transactions() -> int:
    """Open transactions of other sessions on the test database that have written something (an import's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_100k_row_job_reports_rising_progress_and_the_synchronous_answer(web, queue, shared_dir, boss, body):
    session = api(web, boss)
    # A lease far above the heartbeat: this test is about a healthy worker, which a busy machine must not make
    # look dead to the sweep.
    with celery_worker(queue=queue, extra_env=jobs_env(shared_dir, lease_seconds=60)):
        job_id = start_job(session, web, body, "BIG")
        seen = []  # (status, done, total) of every poll
        deadline = time.monotonic() + 120
        while True:
            job = session.get(f"{web.url}/api/jobs/{job_id}").json()
            seen.append((job["status"], job["progress"]["done"], job["progress"]["total"]))
            if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert job["status"] == "succeeded", (job["error"], seen[-5:])
    done = [d for _status, d, _total in seen]
    assert done == sorted(done), done  # never goes back
    steps = sorted({d for status, d, _total in seen if status == "running" and 0 < d < ROWS})
    assert len(steps) >= 5, seen  # it rose in steps while the job ran, not in one jump at the end
    assert {total for _status, _d, total in seen if total is not None} == {ROWS}  # the total is known up front
    assert job["progress"] == {"done": ROWS, "total": ROWS}

    synchronous = session.post(
        f"{web.url}/api/issues/import?project=SYN", data=body, headers={"Content-Type": "text/csv"}
    )
    assert synchronous.status_code == 200, synchronous.text[:500]
    # The whole answer, nothing normalised: it names no id or issue number (rows are file lines), and the two
    # projects start alike (empty, the same maintainer, labels made by the import).
    assert job["result"] == synchronous.json()
    result = job["result"]
    # A row with a bad status never reaches the assignee lookup: its ``ghost`` is neither an error nor counted.
    ghosts = sum(1 for n in range(89, ROWS + 1, 89) if n % 97)
    failed = ROWS // 97 + ghosts
    assert (result["total_rows"], result["created"], result["failed"]) == (ROWS, ROWS - failed, failed)
    assert len(result["errors"]) == 1000 and result["errors_truncated"] is True
    assert result["ignored_columns"] == ["sprint"] and result["unmapped_values"]["assignee"] == {"ghost": ghosts}

    def content(key: str) -> set[tuple]:
        return set(issues_of(key).values_list("title", "description", "status", "priority", "assignee__username"))

    assert issues_of("BIG").count() == issues_of("SYN").count() == ROWS - failed
    assert content("BIG") == content("SYN")
    links = Issue.labels.through.objects
    assert links.filter(issue__project__key="BIG").count() == links.filter(issue__project__key="SYN").count() > 0


def test_a_worker_killed_halfway_through_100k_rows_leaves_none_and_the_job_failed(web, queue, shared_dir, boss, body):
    env = jobs_env(shared_dir, lease_seconds=3)
    with celery_worker(queue=queue, extra_env=env) as worker:
        job_id = start_job(api(web, boss), web, body, "BIG")
        wait_for_job(job_id, statuses=("running",))
        # Generous: a healthy import writes 50,000 rows in seconds, but one CI run met it at 30,000 after 60 s on a
        # machine running benchmarks beside it; a deadline only bounds a hang.
        deadline = time.monotonic() + 300
        while (job := Job.objects.get(pk=job_id)).progress_done < ROWS // 2:
            assert job.status == "running" and time.monotonic() < deadline, (job.status, job.progress_done, job.error)
            time.sleep(0.01)
        # Half of the rows (or more) are written, in the import's transaction, not yet committed: none is visible.
        assert issues_of("BIG").count() == 0 and writing_transactions() >= 1
        worker.kill()
        killed_at = job.progress_done
        assert ROWS // 2 <= killed_at < ROWS, killed_at
        deadline = time.monotonic() + 10
        while writing_transactions() and time.monotonic() < deadline:  # PostgreSQL sees the connection close
            time.sleep(0.05)
        assert writing_transactions() == 0  # the import's transaction is gone, aborted: it can never commit now
        assert Job.objects.get(pk=job_id).status == "running"  # nobody has noticed yet
        assert issues_of("BIG").count() == 0

        # Another worker, started while the dead one's message is still unacknowledged in Redis, with a visibility
        # timeout of 1 s: it gets that message again at once (as any worker would after CELERY_VISIBILITY_TIMEOUT),
        # and its beat runs the sweep.
        with celery_worker(queue=queue, extra_env={**env, "CELERY_VISIBILITY_TIMEOUT": "1"}) as second:
            job = wait_for_job(job_id, timeout=30)
            deadline = time.monotonic() + 15
            while not (redelivered := REDELIVERED.search(tail(second.log, 500))) and time.monotonic() < deadline:
                time.sleep(0.1)
    assert redelivered, tail(second.log, 500)  # the dead worker's message reached the second one, which ran it
    # The sweep failed the job; the redelivered message found it no longer queued and did nothing (``claim``): one
    # attempt, no retry, and no row.
    assert job.status == "failed" and job.error == LOST and job.finished_at is not None, (job.status, job.error)
    assert Job.objects.get(pk=job_id).attempts == 1 and job.progress_total == ROWS
    assert issues_of("BIG").count() == 0
    assert not Issue.labels.through.objects.filter(issue__project__key="BIG").exists()
