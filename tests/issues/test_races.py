"""Races over real HTTP against a live server on PostgreSQL, with threads released together."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rest_framework.authtoken.models import Token

from issues.models import Issue, IssueEvent, Label
from tests.factories import IssueFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def released_together(n: int, call):
    """Run ``call(i)`` in ``n`` threads that start at the same instant; return the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def auth_header(db) -> dict:
    user = UserFactory(username="racer", role="member")
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def test_same_version_patches_exactly_one_wins(live_server, auth_header):
    threads, rounds = 16, 20
    sessions = [requests.Session() for _ in range(threads)]
    for session in sessions:
        session.headers.update(auth_header)
    for round_no in range(rounds):
        issue = IssueFactory(title="race")
        url = f"{live_server.url}/api/issues/{issue.pk}"

        def patch(i: int, url: str = url, round_no: int = round_no) -> requests.Response:
            return sessions[i].patch(url, json={"title": f"r{round_no}-t{i}", "version": 1}, timeout=30)

        responses = released_together(threads, patch)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * (threads - 1), codes
        winner = next(r for r in responses if r.status_code == 200).json()
        for loser in (r for r in responses if r.status_code == 409):
            body = loser.json()
            assert body["current_version"] == 2
            assert body["code"] == "version_conflict"
        issue.refresh_from_db()
        assert issue.version == 2
        assert issue.title == winner["title"]
        assert IssueEvent.objects.filter(issue=issue).count() == 1


def test_concurrent_label_replacement_creates_one_label(live_server, auth_header):
    threads = 32
    issues = [IssueFactory() for _ in range(threads)]
    session_local = threading.local()

    for round_no, name in enumerate(("Bug", "Needs-Triage", "UI")):

        def put(i: int, name: str = name) -> requests.Response:
            if not hasattr(session_local, "session"):
                session_local.session = requests.Session()
                session_local.session.headers.update(auth_header)
            spelled = name if i % 2 == 0 else name.lower()
            url = f"{live_server.url}/api/issues/{issues[i].pk}/labels"
            return session_local.session.put(url, json=[spelled], timeout=30)

        responses = released_together(threads, put)
        assert all(200 <= r.status_code < 300 for r in responses), [r.status_code for r in responses]
        matching = Label.objects.filter(name__iexact=name)
        assert matching.count() == 1
        label = matching.get()
        assert label.issues.count() == threads
        assert Label.objects.count() == round_no + 1


def test_concurrent_label_replacement_on_one_issue(live_server, auth_header):
    threads = 32
    issue = IssueFactory()
    url = f"{live_server.url}/api/issues/{issue.pk}/labels"

    def put(i: int) -> requests.Response:
        return requests.put(url, json=["Bug" if i % 2 else "bug"], headers=auth_header, timeout=30)

    responses = released_together(threads, put)
    assert all(r.status_code == 200 for r in responses)
    assert Label.objects.count() == 1
    issue.refresh_from_db()
    assert issue.version == 2  # the set changed once; every later PUT found it unchanged
    assert IssueEvent.objects.filter(issue=issue).count() == 1
    assert Issue.objects.get(pk=issue.pk).labels.count() == 1
