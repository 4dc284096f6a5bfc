"""The Django admin saves through the services: version bump, events with source admin, resolved_at."""

import pytest

from issues.models import Issue, IssueEvent, Label
from tests.factories import IssueFactory, LabelFactory

pytestmark = pytest.mark.django_db


def admin_form(issue: Issue, **changes) -> dict:
    data = {
        "title": issue.title,
        "description": issue.description,
        "status": issue.status,
        "priority": issue.priority,
        "assignee": issue.assignee_id or "",
        "labels": [label.pk for label in issue.labels.all()],
        "seen_version": issue.version,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_admin_edit_bumps_version_and_records_events(client, staff):
    client.force_login(staff)
    issue = IssueFactory(title="Before")
    label = LabelFactory(name="ui")
    response = client.post(
        f"/admin/issues/issue/{issue.pk}/change/",
        admin_form(issue, title="After", status="resolved", labels=[label.pk]),
    )
    assert response.status_code == 302, response.content[:2000]
    issue.refresh_from_db()
    assert (issue.title, issue.status, issue.version) == ("After", "resolved", 2)
    assert issue.resolved_at is not None
    assert list(issue.labels.values_list("name", flat=True)) == ["ui"]
    events = list(IssueEvent.objects.filter(issue=issue).order_by("id").values_list("type", "source", "actor_id"))
    assert events == [
        ("title_changed", "admin", staff.pk),
        ("status_changed", "admin", staff.pk),
        ("labels_changed", "admin", staff.pk),
    ]


def test_admin_save_without_changes_keeps_version(client, staff):
    client.force_login(staff)
    issue = IssueFactory()
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", admin_form(issue))
    assert response.status_code == 302
    assert Issue.objects.get(pk=issue.pk).version == 1
    assert not IssueEvent.objects.exists()


def test_admin_stale_edit_is_refused(client, staff):
    client.force_login(staff)
    issue = IssueFactory(title="Before")
    form = admin_form(issue, title="Mine")
    Issue.objects.filter(pk=issue.pk).update(version=2, title="Theirs")
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", form)
    assert response.status_code == 200  # the form comes back with the error
    assert b"changed by someone else" in response.content
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Theirs", 2)
    assert not IssueEvent.objects.exists()


def test_admin_add_records_created_event(client, staff):
    client.force_login(staff)
    data = {
        "title": "From admin",
        "description": "",
        "status": "closed",
        "priority": "low",
        "assignee": "",
        "labels": [],
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
    }
    response = client.post("/admin/issues/issue/add/", data)
    assert response.status_code == 302, response.content[:2000]
    issue = Issue.objects.get(title="From admin")
    assert issue.reporter_id == staff.pk
    assert issue.resolved_at is not None
    assert list(IssueEvent.objects.filter(issue=issue).values_list("type", "source")) == [("created", "admin")]


def test_admin_label_delete_records_events(client, staff):
    client.force_login(staff)
    label = LabelFactory(name="gone")
    issue = IssueFactory(labels=[label])
    response = client.post(f"/admin/issues/label/{label.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Label.objects.exists()
    issue.refresh_from_db()
    assert issue.version == 2
    event = IssueEvent.objects.get(issue=issue)
    assert (event.type, event.source, event.details) == ("labels_changed", "admin", {"added": [], "removed": ["gone"]})
