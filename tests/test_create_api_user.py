"""``manage.py create_api_user``: creates or updates a user with a role in a project (the default one unless
``--project`` names another) and prints its token last."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from issues.models import Membership, Project, Visibility
from tests.factories import ProjectFactory, default_project

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_user", *args, stdout=out)
    return out.getvalue()


def roles(username: str) -> dict[str, str]:
    """``{project key: role}`` of the user."""
    return dict(Membership.objects.filter(user__username=username).values_list("project__key", "role"))


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_creates_user_with_role_in_the_default_project_and_prints_a_working_token():
    default_project()
    out = run("dana", "--role", "member", "--password", "a-long-password-1")
    token = out.splitlines()[-1]
    assert "with role member in project MAIN" in out
    user = get_user_model().objects.get(username="dana")
    assert roles("dana") == {"MAIN": "member"}
    assert not user.groups.exists()  # roles are memberships; the old role groups are gone
    assert user.check_password("a-long-password-1")
    assert not user.is_staff
    client = token_client(token)
    created = client.post("/api/issues", {"title": "from token"}, format="json")
    assert created.status_code == 201
    assert created.json()["key"].startswith("MAIN-")
    assert client.post("/api/labels", {"name": "nope"}, format="json").status_code == 403


def test_updating_changes_role_and_keeps_token():
    default_project()
    first = run("erin", "--role", "viewer").splitlines()[-1]
    second = run("erin", "--role", "maintainer", "--staff").splitlines()[-1]
    assert first == second
    user = get_user_model().objects.get(username="erin")
    assert roles("erin") == {"MAIN": "maintainer"}  # replaced, not added
    assert list(user.groups.values_list("name", flat=True)) == ["staff"]  # the admin's permissions
    assert user.has_perm("issues.add_project") and user.has_perm("issues.change_membership")
    assert user.is_staff
    assert not user.has_usable_password()


def test_project_option_gives_the_role_there_and_keeps_the_others():
    default_project()
    web = ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)
    token = run("gus", "--role", "viewer").splitlines()[-1]
    out = run("gus", "--role", "member", "--project", "web")  # the key ignoring case
    assert "with role member in project WEB" in out
    assert out.splitlines()[-1] == token
    assert roles("gus") == {"MAIN": "viewer", "WEB": "member"}
    client = token_client(token)
    created = client.post("/api/issues", {"project": "WEB", "title": "in web"}, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["project"], created.json()["number"]) == ("WEB", 1)
    assert client.post("/api/issues", {"title": "in main"}, format="json").status_code == 403  # a viewer there
    run("gus", "--role", "maintainer", "--project", "WEB")
    assert roles("gus") == {"MAIN": "viewer", "WEB": "maintainer"}
    assert Membership.objects.filter(project=web).count() == 1


def test_unknown_project_is_an_error_and_nothing_is_written():
    default_project()
    ProjectFactory(key="WEB")
    before = db_users()
    with pytest.raises(CommandError, match=r"Unknown project 'NOPE' \(projects: MAIN, WEB\)\. Nothing was changed\."):
        run("hal", "--role", "member", "--project", "nope", "--password", "a-long-password-1")
    assert db_users() == before == []
    assert not Membership.objects.exists()
    # Nor for an existing user: its role stays.
    run("hal", "--role", "viewer")
    with pytest.raises(CommandError, match="Unknown project"):
        run("hal", "--role", "maintainer", "--staff", "--project", "NOPE")
    assert roles("hal") == {"MAIN": "viewer"}
    assert not get_user_model().objects.get(username="hal").is_staff


def test_the_default_project_is_the_settings_one(settings):
    ProjectFactory(key="CORE", visibility=Visibility.INTERNAL)
    settings.DEFAULT_PROJECT_KEY = "CORE"
    assert "in project CORE" in run("ida", "--role", "member")
    assert roles("ida") == {"CORE": "member"}
    assert Project.objects.filter(key="MAIN").exists()  # there, but not the default one


def test_rejects_unknown_role():
    with pytest.raises(CommandError):
        run("frank", "--role", "owner")


def db_users() -> list[tuple]:
    return list(get_user_model().objects.order_by("pk").values_list("username", "password", "is_active", "is_staff"))


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("83920174655", "entirely numeric"),
        ("gwendolyn-m", "too similar"),  # the username
    ],
)
def test_weak_password_is_refused_with_a_clear_error_and_nothing_written(password, reason):
    before = db_users()
    with pytest.raises(CommandError, match=reason) as refused:
        run("gwendolyn-m", "--role", "member", "--password", password)
    assert "Nothing was changed" in str(refused.value)
    assert db_users() == before == []


def test_weak_password_for_an_existing_user_changes_nothing():
    default_project()
    run("hank", "--role", "viewer", "--password", "a-long-password-1")
    before = db_users()
    user = get_user_model().objects.get(username="hank")
    with pytest.raises(CommandError, match="too short"):
        run("hank", "--role", "maintainer", "--staff", "--password", "abc")
    assert db_users() == before
    assert roles("hank") == {"MAIN": "viewer"}
    assert not user.groups.exists()
    assert get_user_model().objects.get(username="hank").check_password("a-long-password-1")


def test_similarity_is_checked_against_the_existing_users_email():
    default_project()
    get_user_model().objects.create_user("ivy", email="quartermaster@example.com")
    with pytest.raises(CommandError, match="too similar"):
        run("ivy", "--role", "member", "--password", "quartermaster")


def test_weak_password_from_the_command_line_exits_non_zero_without_a_traceback(monkeypatch, capsys):
    """As ``manage.py`` runs it (``run_from_argv``): a message on stderr, exit status 1, nothing on stdout."""
    from django.core.management import base

    from issues.management.commands.create_api_user import Command

    # run_from_argv closes every connection at the end, which would end the test's own transaction.
    monkeypatch.setattr(base.connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "create_api_user", "jo", "--role", "member", "--password", "1234"])
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("CommandError: The password was refused:"), err
    assert "too short" in err and "Nothing was changed." in err
    assert db_users() == []


def test_a_deactivated_user_stays_deactivated_unless_told_and_the_output_says_so():
    default_project()
    token = run("kim", "--role", "member").splitlines()[-1]
    get_user_model().objects.filter(username="kim").update(is_active=False)

    out = run("kim", "--role", "maintainer")
    user = get_user_model().objects.get(username="kim")
    assert not user.is_active
    assert "deactivated and stays so" in out and "--reactivate" in out
    assert out.splitlines()[-1] == token  # the token is still the last line
    assert roles("kim") == {"MAIN": "maintainer"}  # the rest of the update happened
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/issues").status_code == 401

    out = run("kim", "--role", "maintainer", "--reactivate")
    assert get_user_model().objects.get(username="kim").is_active
    assert "Reactivated user 'kim'" in out
    assert out.splitlines()[-1] == token
    assert client.get("/api/issues").status_code == 200


def test_reactivate_on_an_active_user_changes_nothing_about_activity():
    default_project()
    out = run("lee", "--role", "viewer", "--reactivate")
    assert get_user_model().objects.get(username="lee").is_active
    assert "Reactivated" not in out and "deactivated" not in out
