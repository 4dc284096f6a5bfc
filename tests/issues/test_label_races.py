"""Deleting a label while others add it to issues, over real HTTP against a live server.

One thread deletes the label ``hot`` again and again (creating it first when it is missing); six threads add it
to their own issues (PUT labels, PATCH with labels) and create issues that carry it. Nobody may get a 5xx, and
the end state must be what the timeline says: every version bump has its event, every label link its history.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from issues import services
from issues.models import EventType, Issue, IssueEvent, Label
from tests.factories import UserFactory, default_project
from tests.helpers import auth_header, run_together

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RUN_SECONDS = 10
ADDERS = 6
NOT_BUMPING = {EventType.CREATED, EventType.COMMENTED}  # every other event type comes with a version bump


class Tally:
    """Answers per (request, status), from every thread; remembers what each answer looked like when it was
    not one the race may give."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.unexpected: list[str] = []

    def record(self, what: str, response: requests.Response, allowed: set[int]) -> None:
        with self.lock:
            self.counts[(what, response.status_code)] += 1
            if response.status_code not in allowed:
                self.unexpected.append(f"{what} {response.status_code}: {response.text[:300]}")
            elif response.status_code != 204 and not response.headers.get("Content-Type", "").startswith(
                "application/json"
            ):
                self.unexpected.append(f"{what} {response.status_code} is not JSON: {response.text[:300]}")

    def table(self) -> str:
        return "\n".join(f"  {what:<28} {status}: {n}" for (what, status), n in sorted(self.counts.items()))


def session_with(header: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.headers.update(header)
    return session


def replayed_labels(initial: list[str], events: list[IssueEvent]) -> set[str]:
    """The label set an issue's labels_changed events lead to from ``initial`` (names ignoring case)."""
    labels = {name.lower() for name in initial}
    for event in events:
        if event.type == EventType.LABELS_CHANGED:
            labels -= {name.lower() for name in event.details["removed"]}
            labels |= {name.lower() for name in event.details["added"]}
    return labels


def test_deleting_a_label_while_others_add_it(live_server):
    base = live_server.url
    deleter = UserFactory(username="deleter", role="maintainer")
    adders = [UserFactory(username=f"adder{i}", role="member") for i in range(ADDERS)]
    deleter_header = auth_header(deleter)
    adder_headers = [auth_header(user) for user in adders]

    tally = Tally()
    initial_labels: dict[int, list[str]] = {}  # issue id → labels its creation answered with
    initial_lock = threading.Lock()
    own_issue: list[dict] = []
    for i, header in enumerate(adder_headers):
        response = session_with(header).post(f"{base}/api/issues", json={"title": f"adder {i}"}, timeout=30)
        assert response.status_code == 201, response.text
        own_issue.append(response.json())
        initial_labels[response.json()["id"]] = response.json()["labels"]
    deadline = time.monotonic() + RUN_SECONDS
    deletions = Counter()

    def delete_loop() -> None:
        session = session_with(deleter_header)
        while time.monotonic() < deadline:
            listing = session.get(f"{base}/api/labels", params={"page_size": 100}, timeout=30)
            tally.record("GET labels", listing, {200})
            if listing.status_code != 200:
                continue
            hot = next((label for label in listing.json()["results"] if label["name"].lower() == "hot"), None)
            if hot is None:
                created = session.post(f"{base}/api/labels", json={"name": "hot"}, timeout=30)
                # 400 only when an adder created "hot" between the listing and this POST (the name is taken).
                tally.record("POST labels", created, {201, 400})
                if created.status_code == 400:
                    taken = {"name": ["A label with this name already exists in this project."]}
                    assert created.json() == taken, created.text
                    continue
                if created.status_code != 201:
                    continue
                hot = created.json()
            deleted = session.delete(f"{base}/api/labels/{hot['id']}", timeout=30)
            tally.record("DELETE label", deleted, {204, 404, 503})
            deletions[deleted.status_code] += 1

    def add_loop(i: int) -> None:
        session = session_with(adder_headers[i])
        issue = own_issue[i]
        url = f"{base}/api/issues/{issue['id']}"
        version = issue["version"]
        step = 0
        while time.monotonic() < deadline:
            kind = step % 4
            step += 1
            if kind == 0:  # add hot (a no-op while the issue still carries it)
                response = session.put(f"{url}/labels", json=["hot", f"own{i}"], timeout=30)
                tally.record("PUT labels +hot", response, {200})
            elif kind in (1, 2):  # remove hot, add it back (as "Hot": names match ignoring case)
                labels = [f"own{i}"] if kind == 1 else ["Hot", f"own{i}"]
                response = session.patch(url, json={"labels": labels, "version": version}, timeout=30)
                what = "PATCH labels -hot" if kind == 1 else "PATCH labels +hot"
                # 409: the deleter bumped the version (removing hot) since this thread last saw it
                tally.record(what, response, {200, 409})
                if response.status_code == 409:
                    assert response.json()["code"] == "version_conflict", response.text
                    version = response.json()["current_version"]
                    continue
            else:
                response = session.post(
                    f"{base}/api/issues", json={"title": f"created by {i}", "labels": ["hot"]}, timeout=30
                )
                tally.record("POST issue", response, {201})
                if response.status_code == 201:
                    body = response.json()
                    assert [name.lower() for name in body["labels"]] == ["hot"], body
                    with initial_lock:
                        initial_labels[body["id"]] = body["labels"]
                continue
            if response.status_code == 200:
                version = response.json()["version"]

    started = time.monotonic()
    run_together(delete_loop, *(lambda i=i: add_loop(i) for i in range(ADDERS)))
    elapsed = time.monotonic() - started
    print(f"\nlabel race: {elapsed:.1f} s, {sum(tally.counts.values())} answers\n{tally.table()}")

    assert not tally.unexpected, tally.unexpected[:10]
    assert not any(status >= 500 and status != 503 for _, status in tally.counts)
    assert deletions[204] >= 5, deletions  # the label really was deleted again and again during the run

    # The end state: versions match the timeline, links match the replayed timeline, no orphans.
    issues = {issue.pk: issue for issue in Issue.objects.prefetch_related("labels")}
    assert set(initial_labels) == set(issues)
    events_by_issue: dict[int, list[IssueEvent]] = {pk: [] for pk in issues}
    for event in IssueEvent.objects.order_by("id"):
        events_by_issue[event.issue_id].append(event)
    for pk, issue in issues.items():
        events = events_by_issue[pk]
        assert [event.type for event in events].count(EventType.CREATED) == 1, (pk, events)
        # Every write here changes labels only, so each version bump comes with exactly one event.
        bumps = [event for event in events if event.type not in NOT_BUMPING]
        assert issue.version == 1 + len(bumps), (pk, issue.version, [(e.type, e.details) for e in bumps])
        linked = {label.name.lower() for label in issue.labels.all()}
        assert replayed_labels(initial_labels[pk], events) == linked, (pk, [(e.type, e.details) for e in events])
    removed_by_deleter = IssueEvent.objects.filter(
        actor=deleter, type=EventType.LABELS_CHANGED, details__removed=["hot"]
    ).count()
    assert removed_by_deleter > 0  # deletions met issues that carried the label, and recorded it
    through = Issue.labels.through
    assert not through.objects.exclude(label_id__in=Label.objects.values("pk")).exists()
    assert not through.objects.exclude(issue_id__in=Issue.objects.values("pk")).exists()
    assert Label.objects.filter(name__iexact="hot").count() <= 1
    print(f"deletions {dict(deletions)}, issues {len(issues)}, deleter's labels_changed events {removed_by_deleter}")


def test_a_deletion_that_waits_for_a_long_label_user_answers_503_within_its_bound(live_server):
    """A label user that holds on for long (an import keeps the label-use lock to the end of its transaction):
    the deletion waits at most LABEL_DELETE_WAIT_MS, answers a JSON 503 with Retry-After and deletes nothing.
    An adder that arrives while the deletion waits is queued behind it for at most that long, then succeeds."""
    deleter = UserFactory(username="deleter", role="maintainer")
    adder = UserFactory(username="adder", role="member")
    deleter_session = session_with(auth_header(deleter))
    adder_session = session_with(auth_header(adder))
    label = Label.objects.create(project=default_project(), name="hot")
    created = adder_session.post(f"{live_server.url}/api/issues", json={"title": "t", "labels": ["hot"]}, timeout=30)
    assert created.status_code == 201, created.text
    issue_url = f"{live_server.url}/api/issues/{created.json()['id']}"
    bound = services.LABEL_DELETE_WAIT_MS / 1000

    holding, release = threading.Event(), threading.Event()

    def long_label_user() -> None:
        # What the import does before it links labels: the label-use lock, shared, to the end of the transaction.
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic(), thread_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [services.LABEL_USE_LOCK])
                holding.set()
                release.wait(30)
        finally:
            thread_connection.close()

    answers: dict[str, tuple[requests.Response, float]] = {}

    def timed(name: str, call: Callable[[], requests.Response]) -> None:
        started = time.monotonic()
        response = call()
        answers[name] = (response, time.monotonic() - started)

    holder = threading.Thread(target=long_label_user)
    holder.start()
    try:
        assert holding.wait(10)
        delete = threading.Thread(
            target=timed,
            args=("delete", lambda: deleter_session.delete(f"{live_server.url}/api/labels/{label.pk}", timeout=30)),
        )
        delete.start()
        time.sleep(bound / 4)  # the deletion is waiting for the lock now
        timed("put", lambda: adder_session.put(f"{issue_url}/labels", json=["hot", "warm"], timeout=30))
        delete.join()
    finally:
        release.set()
        holder.join()
    deleted, waited = answers["delete"]
    put, put_took = answers["put"]
    print(f"\ndeletion answered {deleted.status_code} after {waited:.2f} s; the adder's PUT took {put_took:.2f} s")
    assert deleted.status_code == 503, deleted.text
    assert deleted.json()["code"] == "label_busy"
    assert int(deleted.headers["Retry-After"]) > 0
    assert bound - 0.1 < waited < bound + 2
    assert put.status_code == 200, put.text
    assert put_took < bound + 2
    assert Label.objects.filter(pk=label.pk).exists()
    issue = Issue.objects.get(pk=created.json()["id"])
    assert issue.version == 2  # the PUT's change only: the deletion wrote nothing
    assert not IssueEvent.objects.filter(actor=deleter).exists()
    # Once the label user is done, the deletion goes through and records its change.
    assert deleter_session.delete(f"{live_server.url}/api/labels/{label.pk}", timeout=30).status_code == 204
    issue.refresh_from_db()
    assert issue.version == 3
    assert IssueEvent.objects.get(actor=deleter).details == {"added": [], "removed": ["hot"]}
