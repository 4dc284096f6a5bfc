"""A real browser against a live server: the admin, the browsable API and the offline API docs."""

import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest

from issues.models import Issue
from tests.factories import IssueFactory, UserFactory

pytestmark = [pytest.mark.slow]

PASSWORD = "e2e-password-123"


@pytest.fixture
def staff_user(transactional_db):
    from django.contrib.auth.models import Group

    user = UserFactory(username="e2e-staff", role="maintainer", is_staff=True, password=PASSWORD)
    user.groups.add(Group.objects.get(name="staff"))
    return user


@pytest.fixture
def member_user(transactional_db):
    return UserFactory(username="e2e-member", role="member", password=PASSWORD)


def events_of(issue: Issue) -> list[tuple[str, str]]:
    return list(issue.events.order_by("timestamp", "id").values_list("type", "source"))


def test_admin_create_and_edit_issue_bumps_version_and_timeline(live_server, staff_user, page: Any, shot) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/issues/issue/add/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", PASSWORD)
    shot("admin-login")
    page.click("input[type=submit]")
    page.wait_for_selector("#id_title")

    page.fill("#id_title", "Created in the admin")
    page.fill("#id_description", "Through a real browser")
    page.select_option("#id_priority", "high")
    shot("admin-add-form")
    page.click("input[name=_continue]")  # "Save and continue editing"
    page.wait_for_selector("ul.messagelist li.success")
    shot("admin-created")

    issue = Issue.objects.get(title="Created in the admin")
    assert (issue.version, issue.priority, issue.reporter_id) == (1, "high", staff_user.pk)
    assert events_of(issue) == [("created", "admin")]

    page.fill("#id_title", "Edited in the admin")
    page.select_option("#id_status", "resolved")
    shot("admin-edit-form")
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist li.success")
    shot("admin-edited")

    issue.refresh_from_db()
    assert (issue.title, issue.status, issue.version) == ("Edited in the admin", "resolved", 2)
    assert issue.resolved_at is not None
    assert events_of(issue) == [("created", "admin"), ("title_changed", "admin"), ("status_changed", "admin")]
    # The edit page shows the timeline the save wrote.
    assert "status_changed" in page.content() or "Status changed" in page.content()


def test_browsable_api_login_and_patch_through_the_raw_data_form(live_server, member_user, page: Any, shot) -> None:
    issue = IssueFactory(title="Patch me", reporter=member_user)
    page.goto(f"{live_server.url}/api-auth/login/?next=/api/issues/{issue.pk}")
    page.fill("#id_username", member_user.username)
    page.fill("#id_password", PASSWORD)
    shot("api-login")
    page.click("#submit-id-submit, input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(rf".*/api/issues/{issue.pk}$"))
    assert member_user.username in page.content()  # the navbar shows who is logged in
    shot("api-detail")

    body = json.dumps({"title": "Patched from the browsable API", "version": 1})
    form = page.locator("form:has(button[data-method=PATCH])")
    form.locator("textarea[name=_content]").fill(body)
    shot("api-raw-form-filled")
    form.locator("button[data-method=PATCH]").click()
    page.wait_for_selector("text=Patched from the browsable API")
    shot("api-patched")
    assert "HTTP 200 OK" in page.inner_text(".response-info")

    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Patched from the browsable API", 2)
    assert [event for event, _ in events_of(issue)] == ["title_changed"]  # factory issues have no created event


def test_api_docs_render_offline_with_every_operation(live_server, transactional_db, page: Any, shot) -> None:
    local_hosts = {"localhost", "127.0.0.1", "[::1]", "::1"}
    requested: list[str] = []
    blocked: list[str] = []

    def only_localhost(route: Any) -> None:
        url = route.request.url
        requested.append(url)
        if urlparse(url).hostname in local_hosts or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", only_localhost)
    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    shot("api-docs")

    paths = {text.replace("\u200b", "") for text in page.locator(".opblock-summary-path").all_inner_texts()}
    methods = page.locator(".opblock").count()
    schema = page.request.get(f"{live_server.url}/api/schema?format=json").json()
    http_methods = {"get", "post", "put", "patch", "delete"}
    expected = sum(1 for operations in schema["paths"].values() for method in operations if method in http_methods)
    assert methods == expected, (methods, expected)
    assert {"/api/issues/", "/api/issues/{id}/", "/api/labels/"} <= paths
    assert blocked == [], f"the docs needed the network: {blocked}"
    assert any("/api/schema" in url for url in requested)
