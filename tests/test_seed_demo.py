"""``manage.py seed_demo`` fills the tracker with data that obeys the tracker's own invariants."""

import io
from itertools import pairwise

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Max, Q

from issues.models import DONE_STATUSES, Comment, EventType, Issue, IssueEvent, IssueTally
from issues.services import issue_create

N_ISSUES = 400

STATUS_STEPS = ["open", "in_progress", "resolved", "closed"]


@pytest.fixture
def seeded(db):
    call_command("seed_demo", issues=N_ISSUES, users=20, stdout=io.StringIO())


def test_seed_creates_the_requested_issues_with_varied_states(seeded):
    assert Issue.objects.count() == N_ISSUES
    statuses = set(Issue.objects.values_list("status", flat=True))
    assert statuses == set(STATUS_STEPS)
    assert len(set(Issue.objects.values_list("priority", flat=True))) == 4
    assert Comment.objects.exists()
    assert Issue.labels.through.objects.exists()


def test_every_issue_has_exactly_one_created_event_at_its_creation(seeded):
    created = IssueEvent.objects.filter(type=EventType.CREATED)
    assert created.count() == N_ISSUES
    assert created.values("issue").distinct().count() == N_ISSUES
    for event in created.select_related("issue"):
        assert event.timestamp == event.issue.created_at
        assert event.actor_id == event.issue.reporter_id


def test_resolved_at_is_set_exactly_for_resolved_and_closed_issues(seeded):
    done = list(DONE_STATUSES)
    assert Issue.objects.filter(status__in=done, resolved_at__isnull=True).count() == 0
    assert Issue.objects.exclude(status__in=done).filter(resolved_at__isnull=False).count() == 0
    assert Issue.objects.filter(status__in=done).exists()
    for issue in Issue.objects.filter(status__in=done):
        assert issue.created_at < issue.resolved_at <= issue.updated_at


def test_version_and_status_agree_with_the_status_events(seeded):
    for issue in Issue.objects.annotate(
        n_status=Count("events", filter=Q(events__type=EventType.STATUS_CHANGED)),
        last_event=Max("events__timestamp"),
    ):
        assert issue.version == 1 + issue.n_status
        steps = [
            (e.details["from"], e.details["to"])
            for e in issue.events.filter(type=EventType.STATUS_CHANGED).order_by("timestamp", "id")
        ]
        index = STATUS_STEPS.index(issue.status)
        assert steps == list(pairwise(STATUS_STEPS[: index + 1]))
        assert issue.updated_at == issue.last_event  # updated_at is the time of the last event
        if issue.resolved_at is not None:
            to_resolved = issue.events.get(type=EventType.STATUS_CHANGED, details__to="resolved")
            assert to_resolved.timestamp == issue.resolved_at


def test_every_comment_has_its_commented_event(seeded):
    commented = {event.details["comment_id"]: event for event in IssueEvent.objects.filter(type=EventType.COMMENTED)}
    comments = list(Comment.objects.select_related("issue"))
    assert len(commented) == len(comments)
    for comment in comments:
        event = commented[comment.pk]
        assert event.issue_id == comment.issue_id
        assert event.timestamp == comment.created_at
        assert event.actor_id == comment.author_id
        assert comment.issue.created_at <= comment.created_at <= comment.issue.updated_at


def test_assignees_are_skewed(seeded):
    counts = list(
        Issue.objects.filter(assignee__isnull=False)
        .values("assignee")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("n", flat=True)
    )
    assert Issue.objects.filter(assignee__isnull=True).exists()
    assert counts[0] > 4 * counts[len(counts) // 2]  # the busiest user carries far more than the median one


def test_ids_stay_coherent_after_seeding(seeded):
    """The sequences are moved past the explicit ids: the next issue, comment and event insert fine."""
    issue = issue_create(actor=None, title="After the seed")
    assert issue.pk > N_ISSUES
    assert IssueEvent.objects.filter(issue=issue, type=EventType.CREATED).count() == 1


def test_seeding_again_appends_and_reset_starts_over(seeded):
    call_command("seed_demo", issues=50, users=20, stdout=io.StringIO())
    assert Issue.objects.count() == N_ISSUES + 50
    assert IssueEvent.objects.filter(type=EventType.CREATED).count() == N_ISSUES + 50
    call_command("seed_demo", issues=30, users=20, reset=True, stdout=io.StringIO())
    assert Issue.objects.count() == 30
    assert IssueEvent.objects.exclude(issue__in=Issue.objects.all()).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_load_keeps_the_same_invariants(monkeypatch):
    """--jobs 3: issues first, then labels, events and comments from three connections, indexes rebuilt."""
    from django.db import connection

    from issues.management.commands import seed_demo

    def event_indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [IssueEvent._meta.db_table])
            return {row[0] for row in cursor.fetchall()}

    before = event_indexes()
    monkeypatch.setattr(seed_demo, "BIG_LOAD", 100)  # take the big-load path (index rebuild) on a small load
    call_command("seed_demo", issues=300, users=20, jobs=3, stdout=io.StringIO())
    assert Issue.objects.count() == 300
    assert IssueEvent.objects.filter(type=EventType.CREATED).count() == 300
    done = list(DONE_STATUSES)
    assert not Issue.objects.filter(status__in=done, resolved_at__isnull=True).exists()
    assert not Issue.objects.exclude(status__in=done).filter(resolved_at__isnull=False).exists()
    mismatched = Issue.objects.annotate(
        n_status=Count("events", filter=Q(events__type=EventType.STATUS_CHANGED))
    ).exclude(version=1 + F("n_status"))
    assert not mismatched.exists()
    assert IssueEvent.objects.filter(type=EventType.COMMENTED).count() == Comment.objects.count() > 0
    assert len(before) >= 2
    assert event_indexes() == before  # every secondary index is back
    # The foreign-key triggers were skipped (replica mode); the tally's triggers fire always.
    assert sum(IssueTally.objects.values_list("issues", flat=True)) == 300
    assert issue_create(actor=None, title="After the parallel seed").pk == 301
