"""The output serializers build their dicts directly for speed; they must equal DRF's generic rendering."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from issues.access import SYSTEM
from issues.selectors import issue_comments, issue_detail, issue_list, issue_timeline
from issues.serializers import CommentSerializer, IssueDetailSerializer, IssueEventSerializer, IssueSerializer
from tests.factories import CommentFactory, IssueEventFactory, IssueFactory, LabelFactory, UserFactory

pytestmark = pytest.mark.django_db


def generic(serializer_class: type, instance: object, **kwargs: object) -> dict:
    """What DRF's field-by-field ModelSerializer rendering gives for the same declared fields."""
    return serializers.ModelSerializer.to_representation(serializer_class(**kwargs), instance)


def test_issue_output_equals_generic_rendering():
    resolved = IssueFactory(
        assignee=UserFactory(), labels=[LabelFactory(name="b"), LabelFactory(name="a")], status="closed"
    )
    resolved.resolved_at = timezone.now()
    resolved.save()
    IssueFactory(reporter=None, description="")
    for issue in issue_list(SYSTEM):
        assert IssueSerializer(issue).data == generic(IssueSerializer, issue)


def test_detail_comment_and_event_output_equal_generic_rendering():
    issue = IssueFactory(labels=[LabelFactory()])
    CommentFactory(issue=issue)
    CommentFactory(issue=issue, author=None)
    IssueEventFactory(issue=issue, actor=UserFactory(), details={"from": "open", "to": "closed"})
    IssueEventFactory(issue=issue, actor=None)
    comments = list(issue_comments(issue_id=issue.pk))
    detailed = issue_detail(SYSTEM, issue_id=issue.pk)
    assert IssueDetailSerializer(detailed).data == generic(IssueDetailSerializer, detailed)
    for comment in comments:
        assert CommentSerializer(comment).data == generic(CommentSerializer, comment)
    # The detail's comments (read back from JSON) render exactly like the ORM's.
    rendered = [CommentSerializer(comment).data for comment in comments]
    assert [CommentSerializer(comment).data for comment in detailed.first_comments] == rendered
    assert rendered[0]["created_at"] != rendered[1]["created_at"]
    assert rendered[1]["author"] is None and rendered[0]["author"]["username"]
    for event in issue_timeline(issue_id=issue.pk):
        assert IssueEventSerializer(event).data == generic(IssueEventSerializer, event)
