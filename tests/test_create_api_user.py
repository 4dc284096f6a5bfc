"""``manage.py create_api_user``: creates or updates a user in one role and prints its token last."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_user", *args, stdout=out)
    return out.getvalue()


def test_creates_user_with_role_and_prints_a_working_token():
    token = run("dana", "--role", "member", "--password", "a-long-password-1").splitlines()[-1]
    user = get_user_model().objects.get(username="dana")
    assert list(user.groups.values_list("name", flat=True)) == ["member"]
    assert user.check_password("a-long-password-1")
    assert not user.is_staff
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/issues", {"title": "from token"}, format="json").status_code == 201
    assert client.post("/api/labels", {"name": "nope"}, format="json").status_code == 403


def test_updating_changes_role_and_keeps_token():
    first = run("erin", "--role", "viewer").splitlines()[-1]
    second = run("erin", "--role", "maintainer", "--staff").splitlines()[-1]
    assert first == second
    user = get_user_model().objects.get(username="erin")
    assert sorted(user.groups.values_list("name", flat=True)) == ["maintainer", "staff"]
    assert user.is_staff
    assert not user.has_usable_password()


def test_rejects_unknown_role():
    with pytest.raises(CommandError):
        run("frank", "--role", "owner")
