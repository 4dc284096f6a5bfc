"""``manage.py seed_demo`` fills the tracker with data that obeys the tracker's own invariants.

``check_seed_invariants`` is the list of those invariants (the command's module docstring); the benchmarks'
set-based loader is held to the same function in ``tests/test_bench_seed.py``.
"""

import io
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from issues.events import comment_excerpt
from issues.models import DONE_STATUSES, Comment, EventType, Issue, IssueEvent, IssueTally
from issues.services import issue_create
from tests.factories import ensure_role_groups

N_ISSUES = 400
N_USERS = 20

STATUS_STEPS = ["open", "in_progress", "resolved", "closed"]


def check_seed_invariants(n_issues: int, n_users: int, *, in_id_order: bool = True) -> None:
    """The demo data in the database keeps every invariant of ``seed_demo``'s docstring (``in_id_order``:
    created in id order, true of one load, not of a load added to an earlier one)."""
    issues = {row["id"]: row for row in Issue.objects.values()}
    assert len(issues) == n_issues
    assert sum(IssueTally.objects.values_list("issues", flat=True)) == n_issues  # the tally's triggers fired
    assert {i["status"] for i in issues.values()} == set(STATUS_STEPS)
    assert {i["priority"] for i in issues.values()} == {"low", "medium", "high", "critical"}
    now = timezone.now()
    by_id = [issues[pk] for pk in sorted(issues)]
    assert all(now - timedelta(days=366) < i["created_at"] <= now for i in by_id)
    if in_id_order:
        assert all(a["created_at"] < b["created_at"] for a, b in pairwise(by_id))
    assert all(i["title"].endswith(f" (#{i['id']})") for i in by_id)

    users = get_user_model().objects.filter(username__startswith="demo_user_")
    assert users.count() == n_users
    assert not any(user.has_usable_password() for user in users)
    assert set(users.values_list("groups__name", flat=True)) == {"member"}
    per_assignee = Counter(i["assignee_id"] for i in by_id if i["assignee_id"] is not None)
    assert len(per_assignee) < n_issues  # some issues are unassigned
    busiest, *_ = sorted(per_assignee.values(), reverse=True)
    assert busiest > 4 * statistics.median(per_assignee.values())  # skewed: a few users carry most issues

    events = defaultdict(list)
    for event in IssueEvent.objects.order_by("timestamp", "id").values():
        events[event["issue_id"]].append(event)
    comments = {c["id"]: c for c in Comment.objects.values()}
    commented = {}
    for pk, issue in issues.items():
        timeline = events.pop(pk)
        created = [e for e in timeline if e["type"] == EventType.CREATED]
        assert [(e["timestamp"], e["actor_id"]) for e in created] == [(issue["created_at"], issue["reporter_id"])]
        steps = [e for e in timeline if e["type"] == EventType.STATUS_CHANGED]
        assert [(e["details"]["from"], e["details"]["to"]) for e in steps] == list(
            pairwise(STATUS_STEPS[: STATUS_STEPS.index(issue["status"]) + 1])
        )
        assert issue["version"] == 1 + len(steps)
        assert issue["updated_at"] == timeline[-1]["timestamp"]  # updated_at is the time of the last event
        if issue["status"] in DONE_STATUSES:
            assert issue["created_at"] < issue["resolved_at"] <= issue["updated_at"]
            assert [e["timestamp"] for e in steps if e["details"]["to"] == "resolved"] == [issue["resolved_at"]]
        else:
            assert issue["resolved_at"] is None
        commented.update({e["details"]["comment_id"]: e for e in timeline if e["type"] == EventType.COMMENTED})
        assert len(created) + len(steps) + sum(e["type"] == EventType.COMMENTED for e in timeline) == len(timeline)
    assert not events  # no event of an issue that does not exist

    assert comments and commented.keys() == comments.keys()
    for pk, comment in comments.items():
        event, issue = commented[pk], issues[comment["issue_id"]]
        assert (event["issue_id"], event["timestamp"], event["actor_id"]) == (
            comment["issue_id"],
            comment["created_at"],
            comment["author_id"],
        )
        assert event["details"]["excerpt"] == comment_excerpt(comment["body"])
        assert issue["created_at"] <= comment["created_at"] <= issue["updated_at"]
    per_issue = Counter(c["issue_id"] for c in comments.values())
    assert set(per_issue.values()) <= {1, 2, 3, 120}
    labels = Counter(Issue.labels.through.objects.values_list("issue_id", flat=True))
    assert labels and max(labels.values()) <= 3


@pytest.fixture
def seeded(db):
    ensure_role_groups()  # a transactional test before this one may have flushed them
    call_command("seed_demo", issues=N_ISSUES, users=N_USERS, stdout=io.StringIO())


def test_seed_keeps_every_invariant(seeded):
    check_seed_invariants(N_ISSUES, N_USERS)


def test_ids_come_from_the_sequences(seeded):
    """The next issue, comment and event insert fine after the seed."""
    issue = issue_create(actor=None, title="After the seed")
    assert issue.pk > max(Issue.objects.exclude(pk=issue.pk).values_list("pk", flat=True))
    assert IssueEvent.objects.filter(issue=issue, type=EventType.CREATED).count() == 1


def test_seeding_again_appends_and_reset_starts_over(seeded):
    out = io.StringIO()
    call_command("seed_demo", issues=50, users=N_USERS, stdout=out)
    assert out.getvalue().startswith("Seeded 50 issues, ")
    check_seed_invariants(N_ISSUES + 50, N_USERS, in_id_order=False)
    call_command("seed_demo", issues=300, users=N_USERS, reset=True, stdout=io.StringIO())
    check_seed_invariants(300, N_USERS)


def test_more_users_adds_the_missing_ones(seeded):
    call_command("seed_demo", issues=0, users=N_USERS + 5, stdout=io.StringIO())
    assert get_user_model().objects.filter(username__startswith="demo_user_").count() == N_USERS + 5
    assert Issue.objects.count() == N_ISSUES
