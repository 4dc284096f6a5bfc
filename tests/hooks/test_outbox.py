"""The outbox: each write path queues exactly the contract's events, in its own transaction, with the issue as the
write left it and that write's timeline events as ``changes``; refused writes queue nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hooks.models import DeliveryStatus, Webhook, WebhookDelivery
from hooks.outbox import record_import
from issues import selectors, services
from issues.access import SYSTEM
from issues.models import Issue, IssueEvent, Source
from issues.serializers.issues import IssueEventSerializer, IssueSerializer
from tests.factories import IssueFactory, LabelFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def payloads(event: str | None = None) -> list[dict]:
    rows = WebhookDelivery.objects.order_by("created_at", "id")
    if event:
        rows = rows.filter(event=event)
    return [row.payload for row in rows]


def issue_now(issue_id: int) -> dict:
    return IssueSerializer(selectors.issue_get(SYSTEM, issue_id=issue_id)).data


def events_at(issue_id: int, timestamp) -> list[dict]:
    events = IssueEvent.objects.filter(issue_id=issue_id, timestamp=timestamp).select_related("actor").order_by("id")
    return [IssueEventSerializer(event).data for event in events]


def test_create_queues_issue_created_with_the_issue_and_its_created_event(boss_client, boss, webhook):
    response = boss_client.post(
        "/api/issues", {"project": "WEB", "title": "Login", "labels": ["b", "A"]}, format="json"
    )
    assert response.status_code == 201
    issue_id = response.json()["id"]
    (body,) = payloads()
    assert body["type"] == "issue.created"
    data = body["data"]
    assert data["project"] == "WEB"
    assert data["issue"] == issue_now(issue_id) == response.json()
    assert data["actor"] == {"id": boss.pk, "username": "boss"}
    assert data["source"] == "api"
    assert [change["type"] for change in data["changes"]] == ["created"]
    assert data["changes"] == events_at(issue_id, Issue.objects.get(pk=issue_id).created_at)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.webhook_id) == (DeliveryStatus.PENDING, 0, webhook.pk)


def test_patch_queues_one_update_with_that_writes_events(boss_client, webhook, project):
    issue = IssueFactory(project=project, title="Old")
    response = boss_client.patch(
        f"/api/issues/{issue.pk}", {"title": "New", "status": "resolved", "version": 1}, format="json"
    )
    assert response.status_code == 200
    (body,) = payloads()
    assert body["type"] == "issue.updated"
    assert body["data"]["issue"] == response.json()
    changes = body["data"]["changes"]
    assert sorted(change["type"] for change in changes) == ["status_changed", "title_changed"]
    assert {c["type"]: c["details"] for c in changes}["title_changed"] == {"from": "Old", "to": "New"}
    # a second write: one more event, with only its own changes
    boss_client.patch(f"/api/issues/{issue.pk}", {"priority": "high", "version": 2}, format="json")
    second = payloads()[1]["data"]
    assert [change["type"] for change in second["changes"]] == ["priority_changed"]
    assert second["issue"]["version"] == 3


def test_labels_put_queues_an_update_with_labels_changed(boss_client, webhook, project):
    issue = IssueFactory(project=project, labels=[LabelFactory(project=project, name="bug")])
    response = boss_client.put(f"/api/issues/{issue.pk}/labels", {"labels": ["ui", "bug"]}, format="json")
    assert response.status_code == 200
    (body,) = payloads()
    assert body["type"] == "issue.updated"
    assert body["data"]["issue"]["labels"] == ["bug", "ui"] == response.json()["labels"]
    assert [change["type"] for change in body["data"]["changes"]] == ["labels_changed"]


def test_comment_queues_issue_commented(boss_client, webhook, project):
    issue = IssueFactory(project=project)
    response = boss_client.post(f"/api/issues/{issue.pk}/comments", {"body": "Looks good"}, format="json")
    assert response.status_code == 201
    (body,) = payloads()
    assert body["type"] == "issue.commented"
    (change,) = body["data"]["changes"]
    assert change["type"] == "commented"
    assert change["details"]["comment_id"] == response.json()["id"]
    assert body["data"]["issue"] == issue_now(issue.pk)


def test_bulk_of_50_queues_one_update_per_changed_issue_in_one_statement(boss_client, webhook, project):
    issues = [IssueFactory(project=project) for _ in range(50)]
    already = IssueFactory(project=project, status="closed")
    items = [{"id": issue.pk, "status": "closed"} for issue in [*issues, already]]
    with CaptureQueriesContext(connection) as ctx:
        response = boss_client.post("/api/issues/bulk-status", items, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["updated"] == 50
    assert sum("hooks_webhookdelivery" in q["sql"] for q in ctx.captured_queries) == 1
    bodies = payloads()
    assert len(bodies) == 50
    assert sorted(body["data"]["issue"]["id"] for body in bodies) == sorted(issue.pk for issue in issues)
    for body in bodies:
        data = body["data"]
        assert body["type"] == "issue.updated" and data["source"] == "bulk"
        assert data["issue"] == issue_now(data["issue"]["id"])
        (change,) = data["changes"]
        assert change["type"] == "status_changed" and change["details"]["to"] == "closed"


def test_admin_edit_goes_through_the_service(webhook, project, staff):
    issue = IssueFactory(project=project)
    services.issue_update(
        issue_id=issue.pk, actor=staff, expected_version=1, changes={"title": "By admin"}, source=Source.ADMIN
    )
    (body,) = payloads()
    assert body["data"]["source"] == "admin"
    assert body["data"]["changes"][0]["details"] == {"from": issue.title, "to": "By admin"}


@pytest.mark.parametrize(
    ("method", "body", "headers", "status"),
    [
        ("patch", {"title": "x", "version": 7}, {}, 409),
        ("patch", {"title": "x"}, {"HTTP_IF_MATCH": '"7"'}, 412),
        ("patch", {"status": "nope"}, {}, 400),
        ("patch", {"title": "", "version": 1}, {}, 400),
    ],
)
def test_a_refused_write_queues_nothing(boss_client, webhook, project, method, body, headers, status):
    issue = IssueFactory(project=project)
    response = getattr(boss_client, method)(f"/api/issues/{issue.pk}", body, format="json", **headers)
    assert response.status_code == status, response.content
    assert not WebhookDelivery.objects.exists()


def test_a_refused_bulk_queues_nothing(boss_client, webhook, project):
    issue = IssueFactory(project=project)
    response = boss_client.post(
        "/api/issues/bulk-status", [{"id": issue.pk, "status": "closed", "version": 9}], format="json"
    )
    assert response.status_code == 409
    assert not WebhookDelivery.objects.exists()


def test_a_write_that_changes_nothing_queues_nothing(boss_client, webhook, project):
    issue = IssueFactory(project=project, title="Same")
    assert (
        boss_client.patch(f"/api/issues/{issue.pk}", {"title": "Same", "version": 1}, format="json").status_code == 200
    )
    assert not WebhookDelivery.objects.exists()


def test_only_active_subscribed_webhooks_of_the_project_get_the_event(boss_client, project, receiver, fast_hooks):
    url = receiver.url
    created_only = Webhook.objects.create(project=project, url=url, events=["issue.created"])
    commented_only = Webhook.objects.create(project=project, url=url, events=["issue.commented"])
    Webhook.objects.create(project=project, url=url, events=["*"], active=False)
    Webhook.objects.create(project=ProjectFactory(key="OTHER"), url=url, events=["*"])
    issue_id = boss_client.post("/api/issues", {"project": "WEB", "title": "t"}, format="json").json()["id"]
    boss_client.patch(f"/api/issues/{issue_id}", {"title": "u", "version": 1}, format="json")
    boss_client.post(f"/api/issues/{issue_id}/comments", {"body": "c"}, format="json")
    sent = sorted(WebhookDelivery.objects.values_list("webhook_id", "event"))
    assert sent == sorted([(created_only.pk, "issue.created"), (commented_only.pk, "issue.commented")])


def test_a_patch_with_a_webhook_costs_the_same_queries_as_without(boss_client, project, receiver, fast_hooks):
    first, second = IssueFactory(project=project), IssueFactory(project=project)
    with CaptureQueriesContext(connection) as without:
        boss_client.patch(f"/api/issues/{first.pk}", {"title": "a", "version": 1}, format="json")
    Webhook.objects.create(project=project, url=receiver.url, events=["*"])
    with CaptureQueriesContext(connection) as with_hook:
        boss_client.patch(f"/api/issues/{second.pk}", {"title": "a", "version": 1}, format="json")
    assert len(with_hook.captured_queries) == len(without.captured_queries)
    assert WebhookDelivery.objects.count() == 1


def test_record_import_queues_one_event_with_the_counts(webhook, project, boss):
    record_import(project.pk, boss, {"created": 1000, "errors": 0})
    (body,) = payloads()
    assert body["type"] == "issues.imported"
    assert body["data"] == {
        "project": "WEB",
        "counts": {"created": 1000, "errors": 0},
        "actor": {"id": boss.pk, "username": "boss"},
        "source": "import",
    }


def test_an_import_queues_one_issues_imported_event_and_a_dry_run_none(boss_client, webhook, project, boss):
    """Through the import itself: one event for the whole file (not one per row), with its counts; a dry run and
    an import that creates nothing queue nothing."""
    csv = "title,status\none,open\ntwo,closed\n,open\n"
    dry = boss_client.post("/api/issues/import?project=WEB&dry_run=true", csv, content_type="text/csv")
    assert dry.status_code == 200 and dry.json()["created"] == 2
    assert payloads() == []
    nothing = boss_client.post("/api/issues/import?project=WEB", "title\n\n", content_type="text/csv")
    assert nothing.status_code == 200 and nothing.json()["created"] == 0
    assert payloads() == []
    response = boss_client.post("/api/issues/import?project=WEB", csv, content_type="text/csv")
    assert response.status_code == 200 and response.json()["created"] == 2
    (body,) = payloads()
    assert body["type"] == "issues.imported"
    assert body["data"]["counts"] == {"total_rows": 3, "created": 2, "failed": 1}
    assert body["data"]["actor"] == {"id": boss.pk, "username": "boss"}
    assert body["data"]["project"] == "WEB"


def test_deleting_a_label_queues_an_update_for_each_issue_that_carried_it(boss_client, webhook, project):
    """A label deletion is a write of every issue that carried it (a new version and a labels_changed event): each
    gets one issue.updated, its issue without the label, its changes that event."""
    label = LabelFactory(project=project, name="doomed")
    carriers = [IssueFactory(project=project, labels=[label]) for _ in range(3)]
    IssueFactory(project=project)  # without the label: no event
    response = boss_client.delete(f"/api/labels/{label.pk}")
    assert response.status_code == 204, response.content
    bodies = payloads("issue.updated")
    assert sorted(body["data"]["issue"]["id"] for body in bodies) == sorted(issue.pk for issue in carriers)
    for body in bodies:
        assert body["data"]["issue"]["labels"] == [] and body["data"]["issue"]["version"] == 2
        assert [(c["type"], c["details"]) for c in body["data"]["changes"]] == [
            ("labels_changed", {"added": [], "removed": ["doomed"]})
        ]
