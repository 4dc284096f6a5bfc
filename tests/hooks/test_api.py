"""``/api/projects/{key}/webhooks``: CRUD for the project's maintainers and staff, the secret shown once, the SSRF
guard at create, and access (404 for a project the caller cannot see, 403 below maintainer)."""

import socket

import pytest
from standardwebhooks import Webhook as Verifier

from hooks.models import Webhook, WebhookDelivery
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.helpers import make_client

pytestmark = pytest.mark.django_db

BASE = "/api/projects/WEB/webhooks"


def create(client, url, events=("*",), **extra):
    return client.post(BASE, {"url": url, "events": list(events), **extra}, format="json")


def test_create_shows_the_secret_once(boss_client, receiver, fast_hooks):
    response = create(boss_client, receiver.url, ["issue.updated", "issue.created", "issue.created"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    Verifier(body["secret"])  # a valid Standard Webhooks secret
    assert body["events"] == ["issue.created", "issue.updated"]
    assert body["active"] is True and body["project"] == "WEB"
    assert response["Location"].endswith(f"{BASE}/{body['id']}")
    listed = boss_client.get(BASE + "/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    one = boss_client.get(f"{BASE}/{body['id']}")
    assert one.status_code == 200 and "secret" not in one.json()


def test_patch_rotate_delete(boss_client, webhook):
    path = f"{BASE}/{webhook.pk}"
    response = boss_client.patch(path, {"active": False, "description": "ci"}, format="json")
    assert response.status_code == 200 and response.json()["active"] is False
    assert boss_client.patch(path, {"secret": "x"}, format="json").status_code == 400
    old = webhook.secret
    rotated = boss_client.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != old and Webhook.objects.get().secret == rotated.json()["secret"]
    assert boss_client.delete(path + "/").status_code == 204
    assert not Webhook.objects.exists()


def test_reactivation_clears_the_failure_count(boss_client, webhook):
    Webhook.objects.filter(pk=webhook.pk).update(active=False, consecutive_failures=20, disabled_reason="x")
    body = boss_client.patch(f"{BASE}/{webhook.pk}", {"active": True}, format="json").json()
    assert (body["active"], body["consecutive_failures"], body["disabled_reason"]) == (True, 0, "")


def test_ping_and_redeliver_answer_202_with_the_delivery(boss_client, webhook):
    response = boss_client.post(f"{BASE}/{webhook.pk}/ping")
    assert response.status_code == 202, response.content
    ping = WebhookDelivery.objects.get()
    assert ping.event == "ping" and ping.payload["data"]["webhook"]["id"] == webhook.pk
    assert response["Location"].endswith(f"{BASE}/{webhook.pk}/deliveries/{ping.pk}")
    assert boss_client.get(response["Location"]).json()["payload"]["type"] == "ping"
    again = boss_client.post(f"{BASE}/{webhook.pk}/deliveries/{ping.pk}/redeliver/")
    assert again.status_code == 202
    assert WebhookDelivery.objects.count() == 2 and again.json()["id"] != str(ping.pk)
    log = boss_client.get(f"{BASE}/{webhook.pk}/deliveries").json()
    assert [row["id"] for row in log["results"]] == [again.json()["id"], str(ping.pk)]  # newest first
    assert set(log["results"][0]) == {
        "id",
        "event",
        "status",
        "attempts",
        "response_status",
        "error",
        "duration_ms",
        "created_at",
        "next_attempt_at",
    }


def test_ping_of_an_inactive_webhook_is_a_409(boss_client, webhook):
    Webhook.objects.filter(pk=webhook.pk).update(active=False)
    assert boss_client.post(f"{BASE}/{webhook.pk}/ping").json()["code"] == "webhook_inactive"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8000/hook",  # a name that resolves to loopback
        "http://192.168.1.10/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.com/hook",
    ],
)
def test_ssrf_targets_are_refused_at_create(boss_client, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = create(boss_client, url)
    assert response.status_code == 400, response.content
    assert "url" in response.json()
    assert not Webhook.objects.exists()


def test_a_public_target_is_accepted(boss_client, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]
    )
    assert create(boss_client, "https://hooks.example.com/in").status_code == 201


def test_unknown_event_and_field_are_400(boss_client, receiver, fast_hooks):
    assert "events" in create(boss_client, receiver.url, ["issue.deleted"]).json()
    assert create(boss_client, receiver.url, [], active=True).status_code == 400
    assert "secret" in create(boss_client, receiver.url, secret="whsec_x").json()


def test_access_maintainers_and_staff_only(project, webhook, staff):
    viewer, member, outsider = UserFactory(), UserFactory(), UserFactory()
    add_member(viewer, project, "viewer")
    add_member(member, project, "member")
    paths = [
        ("get", BASE),
        ("post", BASE),
        ("get", f"{BASE}/{webhook.pk}"),
        ("patch", f"{BASE}/{webhook.pk}"),
        ("delete", f"{BASE}/{webhook.pk}"),
        ("post", f"{BASE}/{webhook.pk}/rotate-secret"),
        ("post", f"{BASE}/{webhook.pk}/ping"),
        ("get", f"{BASE}/{webhook.pk}/deliveries"),
    ]
    for user, expected in [(outsider, 404), (viewer, 403), (member, 403)]:
        client = make_client(user)
        for method, path in paths:
            response = getattr(client, method)(path, {}, format="json")
            assert response.status_code == expected, (user.username, method, path, response.content)
    assert Webhook.objects.get().secret == webhook.secret
    staff_client = make_client(staff)
    assert staff_client.get(BASE).json()["count"] == 1
    assert staff_client.get(f"{BASE}/{webhook.pk}/deliveries").status_code == 200
    # a maintainer of another project sees nothing of this one's webhooks
    elsewhere = UserFactory()
    add_member(elsewhere, ProjectFactory(key="OTHER"), "maintainer")
    assert make_client(elsewhere).get(BASE).status_code == 404
    assert make_client(elsewhere).get(f"/api/projects/OTHER/webhooks/{webhook.pk}").status_code == 404


def test_a_delivery_of_another_webhook_is_not_found(boss_client, webhook, project):
    other = Webhook.objects.create(project=project, url=webhook.url, events=["*"])
    boss_client.post(f"{BASE}/{other.pk}/ping")
    delivery = WebhookDelivery.objects.get()
    assert boss_client.get(f"{BASE}/{webhook.pk}/deliveries/{delivery.pk}").status_code == 404
    assert boss_client.post(f"{BASE}/{webhook.pk}/deliveries/{delivery.pk}/redeliver").status_code == 404
    assert boss_client.get(f"{BASE}/{webhook.pk}/deliveries/not-a-uuid").status_code == 404


def test_project_routes_still_answer(boss_client):
    assert boss_client.get("/api/projects/WEB").json()["key"] == "WEB"
    assert boss_client.get("/api/projects/WEB/members").status_code == 200
