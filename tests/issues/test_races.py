"""Races over real HTTP against a live server, with threads released together."""

import threading

import pytest
import requests

from issues.models import Issue, IssueEvent, Label
from tests.factories import IssueFactory, UserFactory
from tests.helpers import auth_header, released_together

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def racer(db) -> dict:
    """The Authorization header of the member the races run as."""
    return auth_header(UserFactory(username="racer", role="member"))


def test_same_version_patches_exactly_one_wins(live_server, racer):
    threads, rounds = 16, 20
    sessions = [requests.Session() for _ in range(threads)]
    for session in sessions:
        session.headers.update(racer)
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


def test_concurrent_label_replacement_creates_one_label(live_server, racer):
    threads = 32
    issues = [IssueFactory() for _ in range(threads)]
    session_local = threading.local()

    for round_no, name in enumerate(("Bug", "Needs-Triage", "UI")):

        def put(i: int, name: str = name) -> requests.Response:
            if not hasattr(session_local, "session"):
                session_local.session = requests.Session()
                session_local.session.headers.update(racer)
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


def test_concurrent_label_replacement_on_one_issue(live_server, racer):
    threads = 32
    issue = IssueFactory()
    url = f"{live_server.url}/api/issues/{issue.pk}/labels"

    def put(i: int) -> requests.Response:
        return requests.put(url, json=["Bug" if i % 2 else "bug"], headers=racer, timeout=30)

    responses = released_together(threads, put)
    assert all(r.status_code == 200 for r in responses)
    assert Label.objects.count() == 1
    issue.refresh_from_db()
    assert issue.version == 2  # the set changed once; every later PUT found it unchanged
    assert IssueEvent.objects.filter(issue=issue).count() == 1
    assert Issue.objects.get(pk=issue.pk).labels.count() == 1
