"""The roles table of the contract, cell by cell: anonymous, viewer, member, maintainer, staff."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from issues.models import Issue
from tests.factories import IssueFactory, LabelFactory, UserFactory
from tests.helpers import READ_PATHS, make_client

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "viewer", "member", "maintainer", "staff")


@pytest.fixture
def clients(viewer, member, maintainer, staff):
    return {
        "anonymous": APIClient(),
        "viewer": make_client(viewer),
        "member": make_client(member),
        "maintainer": make_client(maintainer),
        "staff": make_client(staff),
    }


def expected(allowed: set[str], role: str, ok: int) -> int:
    if role == "anonymous":
        return 401
    return ok if role in allowed else 403


EVERYONE = {"viewer", "member", "maintainer", "staff"}
WRITERS = {"member", "maintainer", "staff"}
MAINTAINERS = {"maintainer", "staff"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", READ_PATHS)
def test_reads(clients, role, path):
    issue, label = IssueFactory(), LabelFactory()
    response = clients[role].get(path.format(issue=issue.pk, label=label.pk))
    assert response.status_code == expected(EVERYONE, role, 200)
    if role == "anonymous":
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("role", ROLES)
def test_create_issue(clients, role):
    response = clients[role].post("/api/issues", {"title": "x"}, format="json")
    assert response.status_code == expected(WRITERS, role, 201)
    assert Issue.objects.count() == (1 if role in WRITERS else 0)


@pytest.mark.parametrize("role", ROLES)
def test_patch_issue(clients, role):
    issue = IssueFactory()
    response = clients[role].patch(f"/api/issues/{issue.pk}", {"title": "new", "version": 1}, format="json")
    assert response.status_code == expected(WRITERS, role, 200)
    assert Issue.objects.get(pk=issue.pk).version == (2 if role in WRITERS else 1)


@pytest.mark.parametrize("role", ROLES)
def test_replace_labels(clients, role):
    issue = IssueFactory()
    response = clients[role].put(f"/api/issues/{issue.pk}/labels", ["bug"], format="json")
    assert response.status_code == expected(WRITERS, role, 200)


@pytest.mark.parametrize("role", ROLES)
def test_comment(clients, role):
    issue = IssueFactory()
    response = clients[role].post(f"/api/issues/{issue.pk}/comments", {"body": "hi"}, format="json")
    assert response.status_code == expected(WRITERS, role, 201)


@pytest.mark.parametrize("role", ROLES)
def test_label_create_rename_delete(clients, role):
    label = LabelFactory(name="old")
    create = clients[role].post("/api/labels", {"name": "new"}, format="json")
    assert create.status_code == expected(MAINTAINERS, role, 201)
    rename = clients[role].patch(f"/api/labels/{label.pk}", {"name": "renamed"}, format="json")
    assert rename.status_code == expected(MAINTAINERS, role, 200)
    delete = clients[role].delete(f"/api/labels/{label.pk}")
    assert delete.status_code == expected(MAINTAINERS, role, 204)


@pytest.mark.parametrize("path", ["/api/", "/api", "/api/health", "/api/schema", "/api/docs"])
def test_public_endpoints(anon_client, path):
    assert anon_client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/api/", "/api/health"])
def test_head_on_public_routes(anon_client, path):
    assert anon_client.head(path).status_code == 200


def test_token_endpoint(anon_client):
    user = UserFactory(username="carol", password="a-long-password-1")
    response = anon_client.post(
        "/api/auth/token", {"username": "carol", "password": "a-long-password-1"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}
    bad = anon_client.post("/api/auth/token", {"username": "carol", "password": "wrong"}, format="json")
    assert bad.status_code == 400
    assert "token" not in bad.json()


def test_bearer_keyword_and_bad_tokens(member):
    token = Token.objects.create(user=member)
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert bearer.get("/api/issues").status_code == 200
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert wrong.get("/api/issues").status_code == 401
    nul = APIClient()
    nul.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    assert nul.get("/api/issues").status_code == 401


def test_session_login_works_for_browsable_api(client, member):
    client.force_login(member)
    response = client.get("/api/issues", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content


@pytest.mark.parametrize("role", ["viewer", "member", "maintainer"])
def test_non_staff_are_kept_out_of_the_admin(client, role, request):
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert client.get("/admin/issues/issue/").status_code == 302  # sent to the admin login


def test_staff_reach_the_admin(client, staff):
    client.force_login(staff)
    assert client.get("/admin/issues/issue/").status_code == 200


def test_token_carries_group_and_direct_permissions(viewer):
    from django.contrib.auth.models import Permission

    client = make_client(viewer)
    assert client.post("/api/issues", {"title": "x"}, format="json").status_code == 403
    viewer.user_permissions.add(Permission.objects.get(codename="add_issue"))
    assert client.post("/api/issues", {"title": "x"}, format="json").status_code == 201
    assert client.post("/api/labels", {"name": "x"}, format="json").status_code == 403


def test_token_of_inactive_user_is_401(member):
    client = make_client(member)
    member.is_active = False
    member.save()
    assert client.get("/api/issues").status_code == 401


def test_superuser_token_has_every_permission():
    admin = UserFactory(username="root", is_superuser=True)
    assert make_client(admin).post("/api/labels", {"name": "from-root"}, format="json").status_code == 201
