"""Import and export as jobs without a broker (``make run``): the job runs on a thread of the web process after the
commit. 202 + Location, who sees a job, progress, results equal to the synchronous routes', the async limits."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from issues.models import Issue
from jobs import services as job_services
from jobs.models import Job
from tests.factories import IssueFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import IMPORT_URL, make_client
from tests.jobs.conftest import make_csv, wait_for_job

pytestmark = pytest.mark.django_db(transaction=True)


def start_import(client: Any, body: bytes, query: str = "", **headers: str) -> Any:
    return client.post(f"{IMPORT_URL}{query}", data=body, content_type="text/csv", **headers)


@pytest.fixture
def boss(db):
    user = UserFactory(username="boss")
    add_member(user, default_project(), "maintainer")
    return user


def test_import_job_202_location_and_result_equal_to_the_synchronous_import(boss):
    client = make_client(boss)
    body = make_csv(30, bad_every=7)
    response = start_import(client, body, HTTP_PREFER="respond-async")
    assert response.status_code == 202
    job = response.json()["job"]
    assert job["type"] == "import" and job["status"] in ("queued", "running", "succeeded")
    assert response["Location"].endswith(f"/api/jobs/{job['id']}")
    done = wait_for_job(job["id"])
    assert done.status == "succeeded", done.error
    async_answer = client.get(f"/api/jobs/{job['id']}").json()
    assert async_answer["progress"] == {"done": 30, "total": 30}
    assert async_answer["started_at"] and async_answer["finished_at"] and async_answer["file"] is None
    assert Issue.objects.count() == 26

    synchronous = start_import(client, body)
    assert synchronous.status_code == 200
    assert async_answer["result"] == synchronous.json()
    assert not done.upload.storage.exists(done.upload.name)  # the upload is removed once the job ran


def test_async_query_flag_and_dry_run(boss):
    client = make_client(boss)
    response = start_import(client, make_csv(5), "?async=true&dry_run=true")
    assert response.status_code == 202
    job = wait_for_job(response.json()["job"]["id"])
    assert job.status == "succeeded" and job.result["created"] == 5
    assert Issue.objects.count() == 0


def test_progress_rises_monotonically_to_total_over_batches(boss, settings, monkeypatch):
    """Batches of 10 over 95 rows; every progress the side connection writes is seen at once by another connection,
    while the import's transaction is still open."""
    settings.JOBS_IMPORT_BATCH_SIZE = 10
    seen: list[tuple[int, int | None]] = []
    original = job_services.SideChannel.progress

    def watched(self: Any, done: int) -> None:
        original(self, done)
        seen.append(Job.objects.values_list("progress_done", "progress_total").get(pk=self.job_id))

    monkeypatch.setattr(job_services.SideChannel, "progress", watched)
    response = start_import(make_client(boss), make_csv(95), HTTP_PREFER="respond-async")
    job = wait_for_job(response.json()["job"]["id"])
    assert job.status == "succeeded", job.error
    dones = [done for done, _ in seen]
    assert dones == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    assert {total for _, total in seen} == {95}  # counted before the first batch
    assert (job.progress_done, job.progress_total) == (95, 95)


def test_job_seen_by_creator_and_staff_only(boss, staff):
    other = UserFactory(username="other")
    add_member(other, default_project(), "maintainer")
    response = start_import(make_client(boss), make_csv(2), HTTP_PREFER="respond-async")
    job_id = response.json()["job"]["id"]
    wait_for_job(job_id)
    assert make_client(boss).get(f"/api/jobs/{job_id}").status_code == 200
    assert make_client(boss).get(f"/api/jobs/{job_id}/").status_code == 200
    assert make_client(staff).get(f"/api/jobs/{job_id}").status_code == 200
    assert make_client(other).get(f"/api/jobs/{job_id}").status_code == 404
    assert make_client(other).get(f"/api/jobs/{job_id}/file").status_code == 404
    assert make_client().get(f"/api/jobs/{job_id}").status_code in (401, 403)
    assert make_client(other).get("/api/jobs").json()["results"] == []
    assert make_client(staff).get("/api/jobs").json()["results"] == []  # the list is the caller's own, staff too
    assert make_client(boss).get("/api/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_list_is_own_newest_first(boss):
    client = make_client(boss)
    ids = [start_import(client, make_csv(1), "?async=1").json()["job"]["id"] for _ in range(3)]
    for pk in ids:
        wait_for_job(pk)
    listed = client.get("/api/jobs/").json()
    assert [job["id"] for job in listed["results"]] == ids[::-1]
    assert listed["count"] == 3


def test_same_checks_as_the_synchronous_import_before_the_202(boss, member):
    hidden = ProjectFactory(key="HID")
    client = make_client(boss)
    async_header = {"HTTP_PREFER": "respond-async"}
    assert start_import(client, make_csv(1), "?project=HID", **async_header).status_code == 404
    assert start_import(client, make_csv(1), "?project=hid", **async_header).status_code == 404
    assert start_import(make_client(member), make_csv(1), **async_header).status_code == 403
    bad_format = start_import(client, make_csv(1), "?format=nope", **async_header)
    assert bad_format.status_code == 400
    bad_mapping = start_import(client, make_csv(1), "?mapping={", **async_header)
    assert bad_mapping.status_code == 400
    assert start_import(client, make_csv(1), "?dry_run=maybe", **async_header).status_code == 400
    assert not Job.objects.exists() and hidden.pk


def test_async_limits(boss, settings):
    client = make_client(boss)
    settings.IMPORT_ASYNC_MAX_BYTES = 200
    too_big = start_import(client, make_csv(20), HTTP_PREFER="respond-async")
    assert too_big.status_code == 413
    assert not Job.objects.exists()
    settings.IMPORT_ASYNC_MAX_BYTES = 10_000
    settings.IMPORT_ASYNC_MAX_ROWS = 5
    response = start_import(client, make_csv(6), HTTP_PREFER="respond-async")
    assert response.status_code == 202
    job = wait_for_job(response.json()["job"]["id"])
    assert job.status == "failed" and "5" in job.error
    assert Issue.objects.count() == 0
    # Larger than the synchronous limit, within the async one: accepted as a job.
    settings.IMPORT_MAX_ROWS = 5
    settings.IMPORT_ASYNC_MAX_ROWS = 50
    job = wait_for_job(start_import(client, make_csv(6), HTTP_PREFER="respond-async").json()["job"]["id"])
    assert job.status == "succeeded" and job.result["created"] == 6


def test_a_body_over_the_synchronous_limit_is_taken_as_a_job(boss, settings):
    """The request body limit applied before any view (api/middleware.py) is the job's for a request that asks for
    one, and the synchronous import's otherwise."""
    client = make_client(boss)
    body = make_csv(20)
    settings.IMPORT_MAX_BYTES = len(body) - 1
    settings.IMPORT_ASYNC_MAX_BYTES = len(body) * 2
    refused = start_import(client, body)
    assert refused.status_code == 413 and refused.json()["code"] == "request_too_large"
    for query, headers in (("", {"HTTP_PREFER": "respond-async"}), ("?async=true", {})):
        accepted = start_import(client, body, query, **headers)
        assert accepted.status_code == 202, accepted.content
        assert wait_for_job(accepted.json()["job"]["id"]).status == "succeeded"
    assert Issue.objects.count() == 40


def test_a_bad_header_fails_the_job_with_the_synchronous_message(boss):
    client = make_client(boss)
    body = b"nothing,useful\r\nx,y\r\n"
    synchronous = start_import(client, body)
    assert synchronous.status_code == 400
    job = wait_for_job(start_import(client, body, HTTP_PREFER="respond-async").json()["job"]["id"])
    assert job.status == "failed" and job.error == synchronous.json()["detail"]


def test_export_job_file_equals_the_synchronous_export(boss, staff):
    project = default_project()
    other = ProjectFactory(key="OTH")
    for n in range(12):
        IssueFactory(project=project, title=f"Export {n}", status="open" if n % 2 else "closed")
    IssueFactory(project=other, title="Not visible to boss")
    client = make_client(boss)
    for query in ("", "&status=open"):
        response = client.get(f"/api/issues/export?async=true{query}")
        assert response.status_code == 202
        assert response["Location"].endswith(f"/api/jobs/{response.json()['job']['id']}")
        job = wait_for_job(response.json()["job"]["id"])
        assert job.status == "succeeded", job.error
        shown = client.get(f"/api/jobs/{job.pk}").json()
        assert shown["file"].endswith(f"/api/jobs/{job.pk}/file")
        assert shown["progress"]["done"] == shown["progress"]["total"] == (12 if not query else 6)
        download = client.get(f"/api/jobs/{job.pk}/file")
        assert download.status_code == 200
        synchronous = client.get(f"/api/issues/export?{query.lstrip('&')}")
        assert b"".join(download.streaming_content) == b"".join(synchronous.streaming_content)
        assert make_client(staff).get(f"/api/jobs/{job.pk}/file").status_code == 200
        assert make_client(UserFactory(username=f"x{len(query)}")).get(f"/api/jobs/{job.pk}/file").status_code == 404
    bad = client.get("/api/issues/export?async=true&ordering=nonsense")
    assert bad.status_code == 400
    assert Job.objects.filter(type="export").count() == 2


def test_the_sweep_fails_a_silent_running_job_and_its_rows_roll_back(boss, settings):
    """A job whose heartbeat stopped is failed by the sweep; if its worker was only stalled, its transaction cannot
    commit the rows afterwards (the success is recorded in the same transaction, only for a job still running)."""
    settings.JOBS_LEASE_SECONDS = 1
    settings.JOBS_HEARTBEAT_SECONDS = 60
    job = job_services.create_job(
        kind="import",
        user=boss,
        project=default_project(),
        params={"format": "auto", "mapping": None, "dry_run": False},
        upload=job_services.stage_upload(iter([make_csv(3)]), max_bytes=10_000),
    )
    assert wait_for_job(job.pk).status == "succeeded"  # the hand-off ran it (autocommit: at once)
    stalled = threading.Event()
    release = threading.Event()
    original = job_services._finish

    def stall(job: Any, **fields: Any) -> None:
        stalled.set()
        release.wait(10)
        original(job, **fields)

    job2 = Job.objects.create(type="import", created_by=boss, project=default_project(), params=job.params)
    job2.upload.save("again.csv", job_services.stage_upload(iter([make_csv(4)]), max_bytes=10_000))
    before = Issue.objects.count()
    outcome: list[Any] = []
    job_services._finish = stall  # type: ignore[assignment]
    try:
        thread = threading.Thread(target=lambda: outcome.append(job_services._run_here(str(job2.pk))))
        thread.start()
        assert stalled.wait(10)
        silent_since = timezone.now() - timedelta(minutes=5)  # silent for longer than the lease
        Job.objects.filter(pk=job2.pk).update(heartbeat_at=silent_since)
        assert job_services.sweep() == 1
    finally:
        release.set()
        thread.join(10)
        job_services._finish = original  # type: ignore[assignment]
    job2.refresh_from_db()
    assert job2.status == "failed" and job2.error == job_services.LOST
    assert Issue.objects.count() == before
    connection.close()
