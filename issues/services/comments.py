"""Comments: add one, with its ``commented`` event."""

from django.db import transaction
from django.utils import timezone

from hooks.events import ISSUE_COMMENTED
from hooks.outbox import record_issue_event

from .. import events
from ..models import Comment, EventType, Issue, IssueEvent, Source
from .common import User, actor_id


@transaction.atomic
def comment_create(*, issue_id: int, author: User, body: str, source: str = Source.API) -> Comment:
    """Add a comment and its ``commented`` event; the issue's ``updated_at`` moves, its version does not.

    Raises ``Issue.DoesNotExist``.
    """
    now = timezone.now()
    if not Issue.objects.filter(pk=issue_id).update(updated_at=now):
        raise Issue.DoesNotExist(f"Issue {issue_id} does not exist")
    comment = Comment.objects.create(issue_id=issue_id, author_id=actor_id(author), body=body, created_at=now)
    IssueEvent.objects.create(
        issue_id=issue_id,
        type=EventType.COMMENTED,
        actor_id=actor_id(author),
        source=source,
        timestamp=now,
        details={"comment_id": comment.pk, "excerpt": events.comment_excerpt(body)},
    )
    record_issue_event(event=ISSUE_COMMENTED, issue_ids=[issue_id], actor=author, source=source, now=now)
    return comment
