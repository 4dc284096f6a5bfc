"""``manage.py seed_demo`` fills the tracker with data that obeys the tracker's own invariants.

``check_seed_invariants`` is the list of those invariants (the command's module docstring); the benchmarks'
set-based loader is held to the same function in ``tests/test_bench_seed.py``.
"""

import io
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from issues.access import default_project_key
from issues.events import comment_excerpt
from issues.management import demo_text
from issues.models import (
    DONE_STATUSES,
    Comment,
    EventType,
    Issue,
    IssueEvent,
    IssueSearch,
    IssueSearchPending,
    IssueTally,
    Label,
    Membership,
    Project,
    Role,
    Visibility,
)
from issues.services import issue_create
from tests.factories import default_project

N_ISSUES = 400
N_USERS = 20
N_PROJECTS = 5

STATUS_STEPS = ["open", "in_progress", "resolved", "closed"]


def check_seed_invariants(
    n_issues: int, n_users: int, *, in_id_order: bool = True, projects: int | None = None
) -> None:
    """The demo data in the database keeps every invariant of ``seed_demo``'s docstring (``in_id_order``:
    created in id order, true of one load, not of a load added to an earlier one; ``projects``: the issues are
    spread over that many projects, private and internal ones among them when there are 3 or more)."""
    issues = {row["id"]: row for row in Issue.objects.values()}
    assert len(issues) == n_issues
    per_project = Counter(i["project_id"] for i in issues.values())
    tally: Counter[int] = Counter()
    for project_id, count in IssueTally.objects.values_list("project_id", "issues"):
        tally[project_id] += count
    assert +tally == per_project  # the tally's triggers fired, per project
    assert {i["status"] for i in issues.values()} == set(STATUS_STEPS)
    assert {i["priority"] for i in issues.values()} == {"low", "medium", "high", "critical"}
    now = timezone.now()
    by_id = [issues[pk] for pk in sorted(issues)]
    assert all(now - timedelta(days=366) < i["created_at"] <= now for i in by_id)
    if in_id_order:
        assert all(a["created_at"] < b["created_at"] for a, b in pairwise(by_id))
    assert all(i["title"].endswith(f" (#{i['id']})") for i in by_id)
    check_text(by_id)

    check_projects(issues, projects)

    users = get_user_model().objects.filter(username__startswith="demo_user_")
    assert users.count() == n_users
    assert not any(user.has_usable_password() for user in users)
    assert not users.filter(groups__isnull=False).exists()  # roles are memberships, not groups
    in_default = Membership.objects.filter(user__in=users, project__key=default_project_key())
    assert sorted(in_default.values_list("user_id", flat=True)) == sorted(users.values_list("pk", flat=True))
    assert set(in_default.values_list("role", flat=True)) == {Role.MEMBER}
    assert any(i["assignee_id"] is None for i in by_id)  # some issues are unassigned
    # Skewed in each project (its team's first users carry most issues): seen in the project with the most issues.
    per_assignee: dict[int, Counter[int]] = defaultdict(Counter)
    for i in by_id:
        if i["assignee_id"] is not None:
            per_assignee[i["project_id"]][i["assignee_id"]] += 1
    biggest = max(per_assignee.values(), key=lambda counts: counts.total())
    assert max(biggest.values()) > 4 * statistics.median(biggest.values())

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
    links = list(Issue.labels.through.objects.values_list("issue_id", "label__project_id"))
    labels = Counter(issue_id for issue_id, _ in links)
    assert labels and max(labels.values()) <= 3
    assert all(issues[issue_id]["project_id"] == project_id for issue_id, project_id in links)  # its project's

    # Everyone on an issue (reporter, assignee, commenters) can see its project.
    internal = set(Project.objects.filter(visibility=Visibility.INTERNAL).values_list("pk", flat=True))
    members = set(Membership.objects.values_list("user_id", "project_id"))

    def sees(user_id: int, project_id: int) -> bool:
        return project_id in internal or (user_id, project_id) in members

    for issue in by_id:
        assert sees(issue["reporter_id"], issue["project_id"])
        assert issue["assignee_id"] is None or sees(issue["assignee_id"], issue["project_id"])
    assert all(sees(c["author_id"], issues[c["issue_id"]]["project_id"]) for c in comments.values())


def check_text(issues: Sequence[Mapping[str, Any]]) -> None:
    """Titles and descriptions from demo_text's vocabulary: each title starts with one of its subjects, each
    description is sentences; with enough issues to count, the most common subject is in more titles than any of
    the 30 least common (Zipf-like), a few descriptions are empty and most have one to three sentences, and some
    text mentions a component or an error code."""
    subjects = sorted(demo_text.SUBJECTS, key=len, reverse=True)  # "SSO login" before "login"
    firsts = Counter(next(s for s in subjects if i["title"].startswith(demo_text.capitalized(s))) for i in issues)
    assert firsts.total() == len(issues)
    descriptions = [i["description"] for i in issues]
    assert all(d.endswith(".") for d in descriptions if d)
    if len(issues) < 200:
        return
    assert all(firsts[demo_text.SUBJECTS[0]] > firsts[s] for s in demo_text.SUBJECTS[-30:])
    sentences = Counter(d.count(". ") + 1 if d else 0 for d in descriptions)  # a sentence ends with "."
    assert 0 < sentences[0] < 0.15 * len(issues)
    assert sentences[1] + sentences[2] + sentences[3] > 0.7 * len(issues)
    text = " ".join(i["title"] + " " + i["description"] for i in issues)
    assert any(c in text for c in demo_text.COMPONENTS) and re.search(r"\bE[1-9]\d{3}\b", text)


def check_projects(issues: Mapping[int, Mapping[str, Any]], projects: int | None) -> None:
    """Numbers are unique per project and follow creation (id) order in each; with ``projects``, the issues are
    spread over that many projects, the default one among them (and the one with the most issues), private and
    internal mixed, each with a maintainer but the default one (whose demo users are members)."""
    numbers: dict[int, list[int]] = defaultdict(list)
    for pk in sorted(issues):
        numbers[issues[pk]["project_id"]].append(issues[pk]["number"])
    for in_project in numbers.values():
        assert all(a < b for a, b in pairwise(in_project))  # unique, and in creation order
    if projects is None:
        return
    keys = dict(Project.objects.values_list("pk", "key"))
    used = Counter(keys[project_id] for project_id in numbers for _ in numbers[project_id])
    assert len(used) == projects, used
    assert used.most_common(1)[0][0] == default_project_key()
    visibilities = set(Project.objects.filter(key__in=used).values_list("visibility", flat=True))
    if projects >= 3:
        assert visibilities == {Visibility.PRIVATE, Visibility.INTERNAL}
    led = set(Membership.objects.filter(role=Role.MAINTAINER).values_list("project__key", flat=True))
    assert led == set(used) - {default_project_key()}
    for project_id in numbers:  # each project has the demo labels of its own
        assert Label.objects.filter(project_id=project_id).count() >= 12


@pytest.fixture
def seeded(db):
    call_command("seed_demo", issues=N_ISSUES, users=N_USERS, stdout=io.StringIO())


def test_seed_keeps_every_invariant(seeded):
    check_seed_invariants(N_ISSUES, N_USERS, projects=N_PROJECTS)
    assert list(Project.objects.values_list("key", "visibility")) == [  # ordered by key
        ("API", Visibility.INTERNAL),
        ("MAIN", Visibility.INTERNAL),
        ("MOB", Visibility.INTERNAL),
        ("OPS", Visibility.PRIVATE),
        ("WEB", Visibility.PRIVATE),
    ]


def test_ids_and_numbers_come_from_the_sequences(seeded):
    """The next issue, comment and event insert fine after the seed; the next issue of a project gets the
    number after the seed's."""
    web = Project.objects.get(key="WEB")
    issue = issue_create(actor=None, project=web, title="After the seed")
    assert issue.pk > max(Issue.objects.exclude(pk=issue.pk).values_list("pk", flat=True))
    assert issue.number == 1 + max(
        Issue.objects.filter(project=web).exclude(pk=issue.pk).values_list("number", flat=True)
    )
    assert IssueEvent.objects.filter(issue=issue, type=EventType.CREATED).count() == 1


def test_private_projects_are_seen_by_their_members_only(seeded):
    """A demo user outside a private project's team is not on any of its issues, and cannot see it."""
    from issues.access import access_for

    web = Project.objects.get(key="WEB")
    members = set(Membership.objects.filter(project=web).values_list("user_id", flat=True))
    outsiders = get_user_model().objects.filter(username__startswith="demo_user_").exclude(pk__in=members)
    assert outsiders.exists() and members
    on_web = Issue.objects.filter(project=web)
    assert not on_web.filter(assignee__in=outsiders).exists() and not on_web.filter(reporter__in=outsiders).exists()
    assert all(not access_for(user).sees(web.pk) for user in outsiders)
    roles = Counter(Membership.objects.filter(project=web).values_list("role", flat=True))
    assert roles == {Role.MAINTAINER: 1, Role.MEMBER: 7, Role.VIEWER: 2}


def test_seeding_again_appends_and_reset_starts_over(seeded):
    out = io.StringIO()
    call_command("seed_demo", issues=50, users=N_USERS, stdout=out)
    assert out.getvalue().startswith("Seeded 50 issues, ")
    check_seed_invariants(N_ISSUES + 50, N_USERS, in_id_order=False)
    assert Membership.objects.count() == 20 + 4 * 8 + 2 * 2  # the same teams: nothing added
    call_command("seed_demo", issues=300, users=N_USERS, reset=True, stdout=io.StringIO())
    check_seed_invariants(300, N_USERS, projects=N_PROJECTS)
    # Numbers start again at 1 in each project.
    for project in Project.objects.all():
        numbers = sorted(Issue.objects.filter(project=project).values_list("number", flat=True))
        assert numbers == list(range(1, len(numbers) + 1)), project.key


def test_more_users_adds_the_missing_ones(seeded):
    call_command("seed_demo", issues=0, users=N_USERS + 5, stdout=io.StringIO())
    assert get_user_model().objects.filter(username__startswith="demo_user_").count() == N_USERS + 5
    assert Issue.objects.count() == N_ISSUES
    assert Membership.objects.filter(project=default_project()).count() == N_USERS + 5


def test_projects_option_adds_projects_with_generated_keys_past_the_list(db):
    call_command("seed_demo", issues=300, users=12, projects=12, stdout=io.StringIO())
    check_seed_invariants(300, 12, projects=12)
    assert {"QA", "DEMO10", "DEMO11"} <= set(Project.objects.values_list("key", flat=True))
    call_command("seed_demo", issues=10, users=12, projects=1, reset=True, stdout=io.StringIO())
    assert set(Issue.objects.values_list("project__key", flat=True)) == {default_project_key()}


@pytest.mark.parametrize("option", [{"issues": -1}, {"users": 0}, {"projects": 0}])
def test_refuses_bad_sizes(db, option):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=">= 1"):
        call_command("seed_demo", **option, stdout=io.StringIO())
    assert not Issue.objects.exists()


def test_the_vocabulary_is_zipf_like():
    """``zipf_index`` gives the i-th of n entries with probability log((i + 1) / i) / log(n + 1): over a fine grid of
    uniform numbers, each index takes that share of them."""
    n, grid = 60, 200_000
    counts = Counter(demo_text.zipf_index((k + 0.5) / grid, n) for k in range(grid))
    assert set(counts) == set(range(1, n + 1))
    for i in range(1, n + 1):
        assert counts[i] / grid == pytest.approx(math.log((i + 1) / i) / math.log(n + 1), abs=2 / grid)
    # Every value the grammar can produce: a title of at most 255 characters with its " (#id)", sentences that end.
    assert (
        max(map(len, demo_text.SUBJECTS))
        + max(map(len, demo_text.SYMPTOMS))
        + max(map(len, demo_text.CONTEXTS))
        + max(map(len, demo_text.COMPONENTS))
        + len("   in  (#1000000000)")
        <= 255
    )
    assert all(sentence.endswith(".") and ". " not in sentence for sentence in demo_text.SENTENCES)


@pytest.mark.django_db(transaction=True)
def test_the_demo_is_indexed_for_search():
    call_command("seed_demo", "--issues", "300", "--users", "5", stdout=io.StringIO())
    assert not IssueSearchPending.objects.exists()
    assert IssueSearch.objects.count() == Issue.objects.count() == 300
