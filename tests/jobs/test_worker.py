"""Jobs on real processes: a gunicorn web host hands the job to Redis, a Celery worker (with beat) runs it. A job
runs to the synchronous import's answer; a worker SIGKILLed mid-import leaves no row of the import, and the sweep
of another worker fails the job once its heartbeat has been silent for the lease."""

import time
from pathlib import Path

import pytest

from issues.models import Issue
from jobs.models import Job
from jobs.services import LOST
from tests import helpers
from tests.factories import UserFactory, add_member, default_project
from tests.hooks.workers import REDIS_URL, app_env, celery_worker, redis_available
from tests.jobs.conftest import make_csv, wait_for_job
from tests.servers import gunicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def jobs_env(storage: Path) -> dict[str, str]:
    """Small batches, a fast heartbeat, a short lease and a fast sweep; one storage folder for web and workers."""
    return {
        "JOBS_STORAGE_DIR": str(storage),
        "JOBS_IMPORT_BATCH_SIZE": "100",
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_LEASE_SECONDS": "3",
        "JOBS_SWEEP_SECONDS": "1",
    }


@pytest.fixture
def boss(db):
    if not redis_available():
        helpers.unavailable("job worker tests", f"no Redis at {REDIS_URL}", "start redis-server")
    user = UserFactory(username="boss")
    add_member(user, default_project(), "maintainer")
    return user


def post_import(web, boss, body: bytes, query: str = "") -> "object":
    session = web.session()
    session.headers.update(helpers.auth_header(boss))
    return session.post(
        f"{web.url}/api/issues/import{query}",
        data=body,
        headers={"Content-Type": "text/csv", "Prefer": "respond-async"},
    )


def test_a_worker_runs_the_job_to_the_synchronous_answer(boss, job_storage_dir, django_db_blocker):
    env = jobs_env(job_storage_dir)
    body = make_csv(1000, bad_every=9)
    with celery_worker(extra_env=env) as worker, gunicorn_server(extra_env={**app_env(worker.queue), **env}) as web:
        response = post_import(web, boss, body, "?dry_run=true")
        assert response.status_code == 202
        assert response.headers["Location"].endswith(f"/api/jobs/{response.json()['job']['id']}")
        seen = []
        deadline = time.monotonic() + 60
        while (job := Job.objects.get(pk=response.json()["job"]["id"])).status not in ("succeeded", "failed"):
            seen.append(job.progress_done)
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert job.status == "succeeded", job.error
        assert seen == sorted(seen) and (job.progress_done, job.progress_total) == (1000, 1000)
    synchronous = helpers.make_client(boss).post(
        helpers.IMPORT_URL + "?dry_run=true", data=body, content_type="text/csv"
    )
    assert job.result == synchronous.json()
    assert Issue.objects.count() == 0


def test_a_worker_killed_mid_import_leaves_no_rows_and_the_job_fails(boss, job_storage_dir):
    env = jobs_env(job_storage_dir)
    rows = 60_000
    with celery_worker(extra_env=env) as worker, gunicorn_server(extra_env={**app_env(worker.queue), **env}) as web:
        response = post_import(web, boss, make_csv(rows))
        assert response.status_code == 202
        job_id = response.json()["job"]["id"]
        job = wait_for_job(job_id, statuses=("running",))
        deadline = time.monotonic() + 60
        while not 0 < (job := Job.objects.get(pk=job_id)).progress_done < rows:
            assert job.status == "running" and time.monotonic() < deadline, (job.status, job.progress_done)
            time.sleep(0.01)
        worker.kill()
        killed_at = job.progress_done
    assert Job.objects.get(pk=job_id).status == "running"  # nobody has noticed yet
    assert Issue.objects.count() == 0  # the killed transaction committed nothing
    with celery_worker(queue=worker.queue, extra_env=env):  # its beat runs the sweep
        job = wait_for_job(job_id, timeout=30)
    assert job.status == "failed" and job.error == LOST and job.finished_at is not None
    assert 0 < killed_at < rows and job.progress_total == rows
    assert Issue.objects.count() == 0
