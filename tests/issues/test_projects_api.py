"""Projects and their members (``/api/projects``, ``/api/projects/{key}/members``): the access matrix cell by cell,
validation, the last-maintainer rule, and its race over real HTTP."""

import threading
import time
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from issues import services
from issues.models import Membership, Project, Role, Visibility
from tests.factories import ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import assert_json_error, auth_header, make_client, openapi, released_together

pytestmark = pytest.mark.django_db

User = get_user_model()

# The callers of the matrix: staff, the project's maintainer, member and viewer, and an outsider (no membership in
# the project, but the maintainer of the default project: a route that answered 403 before looking at the project
# would show it).
CALLERS = ("staff", "maintainer", "member", "viewer", "outsider")
VISIBILITIES = (Visibility.PRIVATE, Visibility.INTERNAL)
MY_ROLE = {"staff": "maintainer", "maintainer": "maintainer", "member": "member", "viewer": "viewer"}


@pytest.fixture
def world(db) -> dict[str, Any]:
    """A private project WEB and an internal one OPS, each with a maintainer, a member and a viewer, plus staff and an
    outsider; the key ``users`` maps each (caller, visibility) to its user."""
    projects = {
        Visibility.PRIVATE: ProjectFactory(key="WEB", name="Web", visibility=Visibility.PRIVATE),
        Visibility.INTERNAL: ProjectFactory(key="OPS", name="Ops", visibility=Visibility.INTERNAL),
    }
    staff = UserFactory(username="boss", is_staff=True)
    outsider = UserFactory(username="outsider", role=Role.MAINTAINER)  # maintains MAIN only
    users: dict[tuple[str, str], Any] = {}
    for visibility, project in projects.items():
        users["staff", visibility] = staff
        users["outsider", visibility] = outsider
        for role in (Role.MAINTAINER, Role.MEMBER, Role.VIEWER):
            user = UserFactory(username=f"{role}-{project.key.lower()}")
            add_member(user, project, role)
            users[str(role), visibility] = user
    newcomer = UserFactory(username="newcomer")
    return {"projects": projects, "users": users, "newcomer": newcomer}


def caller_client(world: dict[str, Any], caller: str, visibility: str) -> APIClient:
    return make_client(world["users"][caller, visibility])


def sees(caller: str, visibility: str) -> bool:
    return caller != "outsider" or visibility == Visibility.INTERNAL


def manages(caller: str) -> bool:
    return caller in ("staff", "maintainer")


def expected_my_role(caller: str, visibility: str) -> str:
    return MY_ROLE.get(caller, "viewer" if visibility == Visibility.INTERNAL else "")


def not_found_body(client: APIClient, method: str, path: str, **kwargs: Any) -> Any:
    """The answer to the same request on a project that does not exist: an invisible one must look the same."""
    response = getattr(client, method)(path.replace("/WEB", "/NOPE9").replace("/OPS", "/NOPE9"), **kwargs)
    return assert_json_error(response, 404)


def check_denied(response: Any, client: APIClient, caller: str, visibility: str, method: str, path: str, **kw: Any):
    """404 (exactly as for no project at all) when the caller cannot see the project, else 403."""
    if not sees(caller, visibility):
        assert assert_json_error(response, 404) == not_found_body(client, method, path, **kw)
    else:
        assert assert_json_error(response, 403)["code"] == "permission_denied"


# --- the access matrix --------------------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_list_shows_the_projects_the_caller_sees_with_its_role(world, caller, visibility):
    response = caller_client(world, caller, visibility).get("/api/projects")
    assert response.status_code == 200
    body = response.json()
    rows = {row["key"]: row for row in body["results"]}
    assert body["count"] == len(body["results"]) == len(rows)
    key = world["projects"][visibility].key
    if sees(caller, visibility):
        assert rows[key]["my_role"] == expected_my_role(caller, visibility)
    else:
        assert key not in rows
    # Every caller sees the internal projects (MAIN, OPS); staff see everything; nobody sees a private project they
    # are not a member of.
    user = world["users"][caller, visibility]
    member_of = set(Membership.objects.filter(user=user).values_list("project__key", flat=True))
    expected = {"MAIN", "OPS", "WEB"} if caller == "staff" else {"MAIN", "OPS"} | member_of
    assert set(rows) == expected
    assert list(rows) == sorted(rows)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_retrieve(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    path = f"/api/projects/{project.key}"
    response = client.get(path)
    if not sees(caller, visibility):
        check_denied(response, client, caller, visibility, "get", path)
        return
    assert response.status_code == 200
    assert response.json() == {
        "id": project.pk,
        "key": project.key,
        "name": project.name,
        "description": "",
        "visibility": visibility,
        "created_at": response.json()["created_at"],
        "my_role": expected_my_role(caller, visibility),
    }
    assert response.json()["created_at"].endswith("Z")


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_patch(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    path = f"/api/projects/{project.key}"
    body = {"name": "Renamed", "description": "What we build"}
    response = client.patch(path, body, format="json")
    if manages(caller):
        assert response.status_code == 200
        assert response.json()["name"] == "Renamed"
        assert response.json()["description"] == "What we build"
        assert response.json()["my_role"] == "maintainer"
    else:
        check_denied(response, client, caller, visibility, "patch", path, data=body, format="json")
    project.refresh_from_db()
    assert project.name == ("Renamed" if manages(caller) else project.key.capitalize())


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_members_list(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    path = f"/api/projects/{project.key}/members"
    response = client.get(path)
    if not sees(caller, visibility):
        check_denied(response, client, caller, visibility, "get", path)
        return
    assert response.status_code == 200
    users = world["users"]
    assert response.json() == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [  # by username
            {"user": {"id": users[role, visibility].pk, "username": users[role, visibility].username}, "role": role}
            for role in ("maintainer", "member", "viewer")
        ],
    }


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_member_detail(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    member = world["users"]["member", visibility]
    path = f"/api/projects/{project.key}/members/{member.pk}"
    response = client.get(path)
    if not sees(caller, visibility):
        check_denied(response, client, caller, visibility, "get", path)
        return
    assert response.status_code == 200
    assert response.json() == {"user": {"id": member.pk, "username": member.username}, "role": "member"}
    # a user who is not a member of the project: 404
    assert_json_error(client.get(f"/api/projects/{project.key}/members/{world['newcomer'].pk}"), 404)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_put_member_adds_one(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    newcomer = world["newcomer"]
    path = f"/api/projects/{project.key}/members/{newcomer.pk}"
    response = client.put(path, {"role": "member"}, format="json")
    added = Membership.objects.filter(project=project, user=newcomer)
    if not manages(caller):
        check_denied(response, client, caller, visibility, "put", path, data={"role": "member"}, format="json")
        assert not added.exists()
        return
    assert response.status_code == 201
    assert response.json() == {"user": {"id": newcomer.pk, "username": newcomer.username}, "role": "member"}
    assert response["Location"] == f"http://testserver/api/projects/{project.key}/members/{newcomer.pk}"
    assert client.get(response["Location"]).json() == response.json()
    assert added.get().role == Role.MEMBER


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_put_member_changes_a_role(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    viewer = world["users"]["viewer", visibility]
    path = f"/api/projects/{project.key}/members/{viewer.pk}"
    response = client.put(path, {"role": "maintainer"}, format="json")
    if manages(caller):
        assert response.status_code == 200
        assert response.json()["role"] == "maintainer"
    else:
        check_denied(response, client, caller, visibility, "put", path, data={"role": "maintainer"}, format="json")
    role = Membership.objects.get(project=project, user=viewer).role
    assert role == (Role.MAINTAINER if manages(caller) else Role.VIEWER)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("caller", CALLERS)
def test_delete_member(world, caller, visibility):
    client = caller_client(world, caller, visibility)
    project = world["projects"][visibility]
    member = world["users"]["member", visibility]
    path = f"/api/projects/{project.key}/members/{member.pk}"
    response = client.delete(path)
    if manages(caller):
        assert response.status_code == 204
        assert response.content == b""
    else:
        check_denied(response, client, caller, visibility, "delete", path)
    assert Membership.objects.filter(project=project, user=member).exists() is not manages(caller)


@pytest.mark.parametrize("caller", CALLERS)
def test_only_staff_create_projects(world, caller):
    client = caller_client(world, caller, Visibility.PRIVATE)
    response = client.post("/api/projects", {"key": "new", "name": "New"}, format="json")
    if caller == "staff":
        assert response.status_code == 201
    else:
        assert assert_json_error(response, 403)["code"] == "permission_denied"
    assert Project.objects.filter(key="NEW").exists() is (caller == "staff")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/projects"),
        ("post", "/api/projects"),
        ("get", "/api/projects/WEB"),
        ("patch", "/api/projects/WEB"),
        ("get", "/api/projects/WEB/members"),
        ("get", "/api/projects/WEB/members/1"),
        ("put", "/api/projects/WEB/members/1"),
        ("delete", "/api/projects/WEB/members/1"),
    ],
)
def test_anonymous_gets_401_everywhere(world, method, path):
    response = getattr(APIClient(), method)(path, {}, format="json")
    assert assert_json_error(response, 401)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


# --- routes: keys, slashes, bad path values -----------------------------------------------------------------


@pytest.mark.parametrize("spelled", ["web", "Web", "wEB", "WEB"])
def test_keys_match_ignoring_case_on_every_route(world, spelled):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    member = world["users"]["member", Visibility.PRIVATE]
    assert client.get(f"/api/projects/{spelled}").json()["key"] == "WEB"
    assert client.get(f"/api/projects/{spelled}/members").json()["count"] == 3
    assert client.get(f"/api/projects/{spelled}/members/{member.pk}").status_code == 200
    patched = client.patch(f"/api/projects/{spelled}", {"name": spelled}, format="json")
    assert patched.status_code == 200
    assert Project.objects.get(key="WEB").name == spelled
    put = client.put(f"/api/projects/{spelled}/members/{member.pk}", {"role": "viewer"}, format="json")
    assert put.status_code == 200


def test_every_route_answers_with_and_without_a_trailing_slash(world):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    newcomer = world["newcomer"]
    for slash in ("", "/"):
        calls = [
            ("get", "/api/projects", None, 200),
            ("post", "/api/projects", {"key": f"S{len(slash)}", "name": "Slash"}, 201),
            ("get", "/api/projects/WEB", None, 200),
            ("patch", "/api/projects/WEB", {"name": "Slash"}, 200),
            ("get", "/api/projects/WEB/members", None, 200),
            ("put", f"/api/projects/WEB/members/{newcomer.pk}", {"role": "viewer"}, 201),
            ("get", f"/api/projects/WEB/members/{newcomer.pk}", None, 200),
            ("delete", f"/api/projects/WEB/members/{newcomer.pk}", None, 204),
        ]
        for method, path, body, status in calls:
            response = getattr(client, method)(path + slash, body, format="json")
            assert response.status_code == status, (method, path + slash, response.content)


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/W",
        "/api/projects/1AB",
        "/api/projects/ABCDEFGHIJK",
        "/api/projects/A_B",
        "/api/projects/W%C4%B1B",  # "WıB": upper-cases to "WIB", but it is no key
        "/api/projects/NOPE9",
        "/api/projects/WEB/members/0",
        f"/api/projects/WEB/members/{2**63}",
        "/api/projects/WEB/members/abc",
        "/api/projects/NOPE9/members",
    ],
)
def test_bad_or_unknown_path_values_are_json_404s(world, path):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    assert assert_json_error(client.get(path), 404)["code"] == "not_found"


def test_put_is_not_allowed_on_a_project_nor_patch_on_a_member(world):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    member = world["users"]["member", Visibility.PRIVATE]
    assert_json_error(client.put("/api/projects/WEB", {"name": "x"}, format="json"), 405)
    assert_json_error(client.delete("/api/projects/WEB"), 405)
    assert_json_error(client.patch(f"/api/projects/WEB/members/{member.pk}", {"role": "x"}, format="json"), 405)
    assert Project.objects.filter(key="WEB").exists()


# --- create -------------------------------------------------------------------------------------------------


def test_create_answers_201_with_location_and_defaults_to_private(world):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    response = client.post("/api/projects", {"key": " api2 ", "name": "  API v2 "}, format="json")
    assert response.status_code == 201
    body = response.json()
    project = Project.objects.get(key="API2")
    assert body == {
        "id": project.pk,
        "key": "API2",
        "name": "API v2",
        "description": "",
        "visibility": "private",
        "created_at": body["created_at"],
        "my_role": "maintainer",
    }
    assert response["Location"] == "http://testserver/api/projects/API2"
    assert client.get(response["Location"]).json() == body
    assert project.visibility == Visibility.PRIVATE
    assert not Membership.objects.filter(project=project).exists()  # staff maintain it without a membership
    # its issues are numbered from 1 (the row's trigger made its sequence)
    issue = services.issue_create(actor=world["users"]["staff", Visibility.PRIVATE], project=project, title="first")
    issue.refresh_from_db()
    assert issue.key == "API2-1"


def test_create_takes_description_and_visibility(world):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    body = {"key": "Docs", "name": "Docs", "description": "  kept as written ", "visibility": "internal"}
    response = client.post("/api/projects", body, format="json")
    assert response.status_code == 201
    assert response.json()["description"] == "  kept as written "
    assert response.json()["visibility"] == "internal"
    # an internal project is seen by everyone, as a viewer
    other = caller_client(world, "outsider", Visibility.PRIVATE).get("/api/projects/docs")
    assert other.json()["my_role"] == "viewer"


@pytest.mark.parametrize(
    "key",
    ["A", "1AB", "ABCDEFGHIJK", "A-B", "A B", "", "   ", "W\u0131B", "\u017fEC", "ÄBC", "AB\x00", 12, None, ["AB"]],
)
def test_create_refuses_an_invalid_key(world, key):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    before = Project.objects.count()
    response = client.post("/api/projects", {"key": key, "name": "Bad"}, format="json")
    body = assert_json_error(response, 400)
    assert list(body) == ["key"], body
    assert Project.objects.count() == before


@pytest.mark.parametrize("key", ["ab", "Z9", "ABCDEFGHIJ", "x123456789"])
def test_create_accepts_any_valid_key_and_upper_cases_it(world, key):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    response = client.post("/api/projects", {"key": key, "name": "Ok"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["key"] == key.upper()
    assert Project.objects.filter(key=key.upper()).exists()


@pytest.mark.parametrize("key", ["WEB", "web", "Main"])
def test_create_refuses_a_duplicate_key_ignoring_case(world, key):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    before = list(Project.objects.order_by("pk").values())
    response = client.post("/api/projects", {"key": key, "name": "Again"}, format="json")
    assert assert_json_error(response, 400) == {"key": [f"A project with the key '{key.upper()}' already exists."]}
    assert list(Project.objects.order_by("pk").values()) == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"key": "NEW", "name": "x", "owner": 1, "color": "red"},
            {"owner": ["Unknown field."], "color": ["Unknown field."]},
        ),
        ({"key": "NEW", "name": "x", "id": 5}, {"id": ["This field is read-only."]}),
        ({"key": "NEW", "name": "x", "my_role": "viewer"}, {"my_role": ["This field is read-only."]}),
        ({"key": "NEW"}, {"name": ["This field is required."]}),
        ({"name": "x"}, {"key": ["This field is required."]}),
        ({"key": "NEW", "name": "x", "visibility": "public"}, {"visibility": ['"public" is not a valid choice.']}),
        ({"key": "NEW", "name": "x" * 201}, {"name": ["Ensure this field has no more than 200 characters."]}),
    ],
)
def test_create_refuses_bad_bodies_naming_the_fields(world, body, errors):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    response = client.post("/api/projects", body, format="json")
    assert assert_json_error(response, 400) == errors
    assert not Project.objects.filter(key="NEW").exists()


def test_create_honours_an_idempotency_key(world):
    client = caller_client(world, "staff", Visibility.PRIVATE)
    first = client.post("/api/projects", {"key": "ONCE", "name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/api/projects", {"key": "ONCE", "name": "Once"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Project.objects.filter(key="ONCE").count() == 1


# --- PATCH --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"key": "WEB2"}, {"key": ["This field is read-only."]}),
        ({"key": "WEB", "name": "x"}, {"key": ["This field is read-only."]}),
        ({"name": "x", "owner": 3}, {"owner": ["Unknown field."]}),
        ({"created_at": "2020-01-01T00:00:00Z"}, {"created_at": ["This field is read-only."]}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        ({"visibility": "secret"}, {"visibility": ['"secret" is not a valid choice.']}),
        ({"description": 7}, {"description": ["Not a valid string."]}),
    ],
)
def test_patch_refuses_bad_bodies_naming_the_fields(world, body, errors):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    before = list(Project.objects.order_by("pk").values())
    response = client.patch("/api/projects/WEB", body, format="json")
    assert assert_json_error(response, 400) == errors
    assert list(Project.objects.order_by("pk").values()) == before


def test_patch_with_an_empty_body_changes_nothing(world):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    before = list(Project.objects.order_by("pk").values())
    response = client.patch("/api/projects/WEB", {}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Web"
    assert list(Project.objects.order_by("pk").values()) == before


def test_patch_visibility_opens_and_closes_the_project_to_outsiders(world):
    maintainer = caller_client(world, "maintainer", Visibility.PRIVATE)
    outsider = caller_client(world, "outsider", Visibility.PRIVATE)
    assert outsider.get("/api/projects/WEB").status_code == 404
    opened = maintainer.patch("/api/projects/WEB", {"visibility": "internal"}, format="json")
    assert opened.json()["visibility"] == "internal"
    assert outsider.get("/api/projects/WEB").json()["my_role"] == "viewer"
    assert "WEB" in {row["key"] for row in outsider.get("/api/projects").json()["results"]}
    maintainer.patch("/api/projects/WEB", {"visibility": "private"}, format="json")
    assert outsider.get("/api/projects/WEB").status_code == 404
    assert Project.objects.get(key="WEB").visibility == Visibility.PRIVATE


# --- members ------------------------------------------------------------------------------------------------


def test_members_list_is_paginated_by_username_and_leaves_out_deactivated_users(world):
    project = world["projects"][Visibility.PRIVATE]
    for n in range(4):
        add_member(UserFactory(username=f"zz-{n}"), project, Role.VIEWER)
    gone = UserFactory(username="aa-gone", is_active=False)
    add_member(gone, project, Role.MAINTAINER)
    client = caller_client(world, "viewer", Visibility.PRIVATE)
    first = client.get("/api/projects/WEB/members", {"page_size": 5}).json()
    assert first["count"] == 7
    assert [row["user"]["username"] for row in first["results"]] == [
        "maintainer-web",
        "member-web",
        "viewer-web",
        "zz-0",
        "zz-1",
    ]
    assert first["next"].endswith("page=2&page_size=5")
    second = client.get(first["next"]).json()
    assert [row["user"]["username"] for row in second["results"]] == ["zz-2", "zz-3"]
    assert client.get(f"/api/projects/WEB/members/{gone.pk}").status_code == 404


def test_members_list_costs_the_same_for_1_and_30_members():
    project = ProjectFactory(key="QC")
    boss = UserFactory(username="qc-boss", role=Role.MAINTAINER, role__project=project)
    client = make_client(boss)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/projects/QC/members", {"page_size": 100})
        assert response.status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for n in range(29):
        add_member(UserFactory(username=f"qc-{n}"), project, Role.MEMBER)
    assert queries() == one
    # the token with the caller's projects (the project's id comes with them), COUNT, the page with its users
    assert one == 3


def test_projects_list_costs_the_same_for_1_and_30_projects():
    user = UserFactory(username="many")
    client = make_client(user)
    default_project()

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/projects", {"page_size": 100})
        assert response.status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for n in range(30):
        add_member(user, ProjectFactory(key=f"M{n}"), Role.MEMBER)
    assert queries() == one
    assert client.get("/api/projects", {"page_size": 100}).json()["count"] == 31
    assert one == 3  # the token with the caller's projects, COUNT, the page


def test_put_member_keeps_or_changes_a_role_and_the_new_member_sees_the_project(world):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    newcomer = world["newcomer"]
    path = f"/api/projects/WEB/members/{newcomer.pk}"
    assert make_client(newcomer).get("/api/projects/WEB").status_code == 404
    assert client.put(path, {"role": "viewer"}, format="json").status_code == 201
    assert make_client(newcomer).get("/api/projects/WEB").json()["my_role"] == "viewer"
    again = client.put(path, {"role": "viewer"}, format="json")
    assert (again.status_code, again.json()["role"]) == (200, "viewer")
    assert "Location" not in again
    changed = client.put(path, {"role": "member"}, format="json")
    assert (changed.status_code, changed.json()["role"]) == (200, "member")
    assert Membership.objects.get(user=newcomer, project__key="WEB").role == Role.MEMBER
    assert make_client(newcomer).get("/api/projects/WEB").json()["my_role"] == "member"


def test_put_member_of_an_unknown_or_deactivated_user_is_a_404(world):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    gone = UserFactory(username="gone", is_active=False)
    before = Membership.objects.count()
    for user_id in (gone.pk, 999_999):
        response = client.put(f"/api/projects/WEB/members/{user_id}", {"role": "member"}, format="json")
        assert assert_json_error(response, 404)["code"] == "not_found"
    assert Membership.objects.count() == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"role": ["This field is required."]}),
        ({"role": "owner"}, {"role": ['"owner" is not a valid choice.']}),
        ({"role": "Member"}, {"role": ['"Member" is not a valid choice.']}),
        ({"role": "member", "user": 3}, {"user": ["This field is read-only."]}),
        ({"role": "member", "since": "now"}, {"since": ["Unknown field."]}),
        (["member"], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
def test_put_member_refuses_bad_bodies(world, body, errors):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    viewer = world["users"]["viewer", Visibility.PRIVATE]
    response = client.put(f"/api/projects/WEB/members/{viewer.pk}", body, format="json")
    assert assert_json_error(response, 400) == errors
    assert Membership.objects.get(user=viewer, project__key="WEB").role == Role.VIEWER


def test_delete_of_a_user_who_is_not_a_member_is_a_404(world):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    before = Membership.objects.count()
    for user_id in (world["newcomer"].pk, 999_999):
        assert_json_error(client.delete(f"/api/projects/WEB/members/{user_id}"), 404)
    assert Membership.objects.count() == before


def test_a_maintainer_may_leave_while_another_one_stays(world):
    project = world["projects"][Visibility.PRIVATE]
    me = world["users"]["maintainer", Visibility.PRIVATE]
    add_member(world["users"]["member", Visibility.PRIVATE], project, Role.MAINTAINER)
    client = make_client(me)
    assert client.delete(f"/api/projects/WEB/members/{me.pk}").status_code == 204
    assert client.get("/api/projects/WEB").status_code == 404  # a private project: gone from their sight
    assert list(Membership.objects.filter(project=project, role=Role.MAINTAINER).values_list("user__username")) == [
        ("member-web",)
    ]


# --- the last maintainer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["maintainer", "staff"])
def test_removing_the_last_maintainer_is_a_409(world, caller):
    client = caller_client(world, caller, Visibility.PRIVATE)
    last = world["users"]["maintainer", Visibility.PRIVATE]
    before = list(Membership.objects.order_by("pk").values())
    response = client.delete(f"/api/projects/WEB/members/{last.pk}")
    body = assert_json_error(response, 409, code="last_maintainer")
    assert set(body) == {"detail", "code"}
    assert "last maintainer" in body["detail"]
    assert list(Membership.objects.order_by("pk").values()) == before


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_demoting_the_last_maintainer_is_a_409(world, role):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    last = world["users"]["maintainer", Visibility.PRIVATE]
    response = client.put(f"/api/projects/WEB/members/{last.pk}", {"role": role}, format="json")
    assert assert_json_error(response, 409, code="last_maintainer")
    assert Membership.objects.get(user=last, project__key="WEB").role == Role.MAINTAINER
    # with a second maintainer, the demotion goes through
    add_member(world["users"]["member", Visibility.PRIVATE], world["projects"][Visibility.PRIVATE], Role.MAINTAINER)
    assert client.put(f"/api/projects/WEB/members/{last.pk}", {"role": role}, format="json").status_code == 200
    assert Membership.objects.get(user=last, project__key="WEB").role == role


def test_a_deactivated_maintainer_does_not_count(world):
    project = world["projects"][Visibility.PRIVATE]
    add_member(UserFactory(username="retired", is_active=False), project, Role.MAINTAINER)
    last = world["users"]["maintainer", Visibility.PRIVATE]
    response = caller_client(world, "staff", Visibility.PRIVATE).delete(f"/api/projects/WEB/members/{last.pk}")
    assert_json_error(response, 409, code="last_maintainer")
    assert Membership.objects.filter(user=last, project=project).exists()


def test_a_project_without_maintainers_takes_its_first_through_staff(world):
    staff = caller_client(world, "staff", Visibility.PRIVATE)
    assert staff.post("/api/projects", {"key": "NEWP", "name": "New"}, format="json").status_code == 201
    newcomer = world["newcomer"]
    assert staff.get("/api/projects/NEWP/members").json()["count"] == 0
    assert (
        staff.put(f"/api/projects/NEWP/members/{newcomer.pk}", {"role": "maintainer"}, format="json").status_code == 201
    )
    # now the newcomer manages it, and cannot leave it without a maintainer
    own = make_client(newcomer)
    assert own.patch("/api/projects/newp", {"name": "Mine"}, format="json").status_code == 200
    assert own.delete(f"/api/projects/NEWP/members/{newcomer.pk}").status_code == 409


def test_removing_or_demoting_others_is_fine_with_one_maintainer(world):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    member = world["users"]["member", Visibility.PRIVATE]
    viewer = world["users"]["viewer", Visibility.PRIVATE]
    assert client.put(f"/api/projects/WEB/members/{member.pk}", {"role": "viewer"}, format="json").status_code == 200
    assert client.delete(f"/api/projects/WEB/members/{viewer.pk}").status_code == 204
    roles = dict(Membership.objects.filter(project__key="WEB").values_list("user__username", "role"))
    assert roles == {"maintainer-web": "maintainer", "member-web": "viewer"}


# --- the schema and the browsable API -----------------------------------------------------------------------


def test_schema_documents_the_routes_and_their_answers(member_client):
    _schema, paths = openapi(member_client)
    assert set(paths["/api/projects"]) >= {"get", "post"}
    assert set(paths["/api/projects/{key}"]) >= {"get", "patch"}
    assert "get" in paths["/api/projects/{project_key}/members"]
    member = paths["/api/projects/{project_key}/members/{user_id}"]
    assert set(member) >= {"get", "put", "delete"}
    assert {"200", "201", "403", "404", "409"} <= set(member["put"]["responses"])
    assert {"204", "404", "409"} <= set(member["delete"]["responses"])
    assert {"201", "403"} <= set(paths["/api/projects"]["post"]["responses"])


@pytest.mark.parametrize(
    "path", ["/api/projects", "/api/projects/WEB", "/api/projects/WEB/members", "/api/projects/WEB/members/{member}"]
)
def test_browsable_api_renders_the_pages(client, world, path):
    client.force_login(world["users"]["maintainer", Visibility.PRIVATE])
    member = world["users"]["member", Visibility.PRIVATE]
    response = client.get(path.format(member=member.pk), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


# --- the last-maintainer race, over real HTTP -----------------------------------------------------------------


RACE_ROUNDS = 8
# Two requests that each take away one of the project's two maintainers (``a`` and ``b``), made by two staff users
# (whose right to do it cannot change meanwhile): (method, target, role for a PUT).
RACES = {
    "remove": [("delete", "a", None), ("delete", "b", None)],
    "demote": [("put", "a", "member"), ("put", "b", "viewer")],
    "mixed": [("delete", "a", None), ("put", "b", "member")],
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", sorted(RACES))
def test_two_last_maintainers_taken_away_at_once_leave_one(live_server, how):
    """Two requests, each on its own connection and thread, released together, each taking away one of the last two
    maintainers: in every round one succeeds, the other is a 409 ``last_maintainer``, and one maintainer remains."""
    staff = [UserFactory(username=f"staff-{i}", is_staff=True) for i in range(2)]
    sessions = [requests.Session() for _ in staff]
    for session, user in zip(sessions, staff, strict=True):
        session.headers.update(auth_header(user))
    for round_no in range(RACE_ROUNDS):
        project = ProjectFactory(key=f"R{round_no}")
        users = {
            who: UserFactory(username=f"{who}-{round_no}", role=Role.MAINTAINER, role__project=project) for who in "ab"
        }
        base = f"{live_server.url}/api/projects/{project.key.lower()}/members"

        def take_away(i: int, users: dict = users, base: str = base) -> requests.Response:
            method, who, role = RACES[how][i]
            url = f"{base}/{users[who].pk}"
            if method == "delete":
                return sessions[i].delete(url, timeout=30)
            return sessions[i].put(url, json={"role": role}, timeout=30)

        responses = released_together(2, take_away)
        codes = sorted(response.status_code for response in responses)
        assert codes[0] in (200, 204) and codes[1] == 409, (round_no, codes, [r.content for r in responses])
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["code"] == "last_maintainer"
        assert Membership.objects.filter(project=project, role=Role.MAINTAINER).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_last_maintainers_removing_each_other_at_once_leave_one(live_server):
    """The two maintainers remove each other at once. The second to act finds itself the last maintainer (409), or,
    when the first removal committed before its request was authenticated, no longer sees the private project
    (404); either way one maintainer remains."""
    for round_no in range(RACE_ROUNDS):
        project = ProjectFactory(key=f"E{round_no}")
        a, b = (UserFactory(username=f"{who}-{round_no}", role=Role.MAINTAINER, role__project=project) for who in "ab")
        pairs = [(a, b), (b, a)]
        sessions = [requests.Session() for _ in pairs]
        for session, (me, _other) in zip(sessions, pairs, strict=True):
            session.headers.update(auth_header(me))
        base = f"{live_server.url}/api/projects/{project.key}/members"

        def remove(i: int, pairs: list = pairs, sessions: list = sessions, base: str = base) -> requests.Response:
            return sessions[i].delete(f"{base}/{pairs[i][1].pk}", timeout=30)

        responses = released_together(2, remove)
        codes = sorted(response.status_code for response in responses)
        assert codes[0] == 204 and codes[1] in (404, 409), (round_no, codes)
        remaining = Membership.objects.filter(project=project, role=Role.MAINTAINER)
        assert remaining.count() == 1
        winner = next(i for i, r in enumerate(responses) if r.status_code == 204)
        assert remaining.get().user == pairs[winner][0]


def wait_for_a_lock_wait(seconds: float = 10.0) -> bool:
    """Whether some other backend of this database comes to wait for a lock within ``seconds``."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_removal_waits_for_a_maintainer_leaving_outside_the_api(live_server):
    """A write that does not take the project's lock (the admin's members inline deletes a membership row) is still
    waited for: the removal locks the maintainer rows it counts, so it sees that one leave and answers 409."""
    project = ProjectFactory(key="ADM")
    a, b = (UserFactory(username=who, role=Role.MAINTAINER, role__project=project) for who in ("adm-a", "adm-b"))
    headers = auth_header(UserFactory(username="adm-staff", is_staff=True))
    holding, release = threading.Event(), threading.Event()

    def delete_outside_the_api() -> None:
        try:
            with transaction.atomic():
                Membership.objects.filter(project=project, user=a).delete()
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    answers: list[requests.Response] = []

    def delete_through_the_api() -> None:
        url = f"{live_server.url}/api/projects/ADM/members/{b.pk}"
        answers.append(requests.delete(url, headers=headers, timeout=30))

    outside = threading.Thread(target=delete_outside_the_api)
    outside.start()
    try:
        assert holding.wait(30)
        api = threading.Thread(target=delete_through_the_api)
        api.start()
        waited = wait_for_a_lock_wait()
    finally:
        release.set()
        outside.join()
    api.join()
    assert waited, "the removal did not wait for the uncommitted one"
    assert answers[0].status_code == 409, answers[0].content
    assert answers[0].json()["code"] == "last_maintainer"
    assert list(Membership.objects.filter(project=project).values_list("user_id", "role")) == [(b.pk, "maintainer")]


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects",
        "/api/projects/WEB",
        "/api/projects/NOPE9",
        "/api/projects/WEB/members/{member}",
        "/api/projects/WEB/members/0",
        "/api/projects/NOPE9/members/{member}",
    ],
)
def test_options_answers_json_on_every_route(world, path):
    client = caller_client(world, "maintainer", Visibility.PRIVATE)
    response = client.options(path.format(member=world["users"]["member", Visibility.PRIVATE].pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "name" in response.json()
