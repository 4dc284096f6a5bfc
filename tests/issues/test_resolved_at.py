"""Status transitions keep resolved_at right, each change recording one status_changed event."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from issues.models import Issue, IssueEvent
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db


def patch_status(client, issue_id: int, status: str, version: int):
    response = client.patch(f"/api/issues/{issue_id}", {"status": status, "version": version}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_resolved_at_through_a_whole_life(member_client):
    issue = IssueFactory()
    t0 = timezone.now()
    times = [t0 + timedelta(hours=h) for h in range(1, 6)]
    with mock.patch("django.utils.timezone.now", side_effect=times):
        resolved = patch_status(member_client, issue.pk, "resolved", 1)
        closed = patch_status(member_client, issue.pk, "closed", 2)
        reopened = patch_status(member_client, issue.pk, "open", 3)
        in_progress = patch_status(member_client, issue.pk, "in_progress", 4)
        closed_again = patch_status(member_client, issue.pk, "closed", 5)

    def ts(value):
        return value and timezone.datetime.fromisoformat(value.replace("Z", "+00:00"))

    assert ts(resolved["resolved_at"]) == times[0]  # open → resolved sets it
    assert ts(closed["resolved_at"]) == times[0]  # resolved → closed keeps it
    assert reopened["resolved_at"] is None  # closed → open clears it
    assert in_progress["resolved_at"] is None
    assert ts(closed_again["resolved_at"]) == times[4]  # in_progress → closed sets it anew
    assert closed_again["version"] == 6

    events = list(IssueEvent.objects.filter(issue=issue).order_by("id").values_list("type", "details"))
    assert events == [
        ("status_changed", {"from": "open", "to": "resolved"}),
        ("status_changed", {"from": "resolved", "to": "closed"}),
        ("status_changed", {"from": "closed", "to": "open"}),
        ("status_changed", {"from": "open", "to": "in_progress"}),
        ("status_changed", {"from": "in_progress", "to": "closed"}),
    ]


def test_closed_to_resolved_keeps_resolved_at(member_client):
    issue = IssueFactory()
    first = patch_status(member_client, issue.pk, "closed", 1)
    second = patch_status(member_client, issue.pk, "resolved", 2)
    assert second["resolved_at"] == first["resolved_at"] is not None


def test_editing_a_closed_issue_keeps_resolved_at(member_client):
    issue = IssueFactory()
    closed = patch_status(member_client, issue.pk, "closed", 1)
    edited = member_client.patch(f"/api/issues/{issue.pk}", {"title": "Edited", "version": 2}, format="json").json()
    assert edited["resolved_at"] == closed["resolved_at"]
    assert edited["updated_at"] != closed["updated_at"]
    assert Issue.objects.get(pk=issue.pk).version == 3
