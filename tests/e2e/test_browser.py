"""A real browser against a live server: the admin, the browsable API and the offline API docs."""

import io
import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest
from django.core.management import call_command

from issues.models import Issue
from tests.factories import IssueFactory, UserFactory, default_project
from tests.helpers import privileges

pytestmark = [pytest.mark.slow]

PASSWORD = "e2e-password-123"


@pytest.fixture
def staff_user(transactional_db):
    """A staff user made as an operator makes one: a maintainer of the default project, staff, in the ``staff``
    group (which ``create_api_user`` makes again when it is missing, as after a transactional test's flush; the
    default project too is made again first)."""
    from django.contrib.auth import get_user_model

    default_project()
    out = io.StringIO()
    call_command("create_api_user", "e2e-staff", "--role", "maintainer", "--staff", "--password", PASSWORD, stdout=out)
    user = get_user_model().objects.get(username="e2e-staff")
    assert user.is_staff and list(user.groups.values_list("name", flat=True)) == ["staff"], out.getvalue()
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
    # No project chosen: the default one, which numbered it.
    assert issue.project == default_project() and issue.number >= 1
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
    page.wait_for_load_state("networkidle")
    violations = list(page.csp_violations)
    page.csp_violations.clear()  # reported here, not again at teardown
    assert violations == [], "the Content-Security-Policy refused part of the docs page"
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


# --- The admin is no ladder; tokens are never shown; every page works under the Content-Security-Policy ---------


def admin_login(page: Any, live_server: Any, username: str, password: str, next_url: str = "/admin/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(rf".*{re.escape(next_url)}$"))


def assert_privileges_not_editable(page: Any) -> None:
    for field in ("is_superuser", "is_staff", "groups", "user_permissions", "groups_old", "user_permissions_old"):
        assert page.locator(f"[name={field}]").count() == 0, field
    # Shown, as text.
    assert page.locator(".field-is_superuser .readonly").count() == 1
    assert page.locator(".field-groups .readonly").count() == 1


def test_staff_cannot_raise_privileges_in_the_admin(live_server, staff_user, member_user, page: Any, shot) -> None:
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("e2e-root", "root@example.com", PASSWORD)
    mine_before, theirs_before = privileges(staff_user), privileges(member_user)
    admin_login(page, live_server, staff_user.username, PASSWORD)

    # Their own page: the privileges are shown, not editable; saving the page changes nothing of them.
    page.goto(f"{live_server.url}/admin/auth/user/{staff_user.pk}/change/")
    assert_privileges_not_editable(page)
    shot("own-user-page")
    page.fill("#id_first_name", "Stella")
    # What a person could still try from the browser's console: put the fields back into the form.
    page.evaluate(
        """() => {
        const form = document.querySelector("#user_form");
        for (const [name, value] of [["is_superuser", "on"], ["is_staff", "on"], ["groups", "1"]]) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
        }
    }"""
    )
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist li.success")
    shot("own-user-saved")
    assert privileges(staff_user) == mine_before
    assert staff_user.first_name == "Stella"

    # Another user's page: the same.
    page.goto(f"{live_server.url}/admin/auth/user/{member_user.pk}/change/")
    assert_privileges_not_editable(page)
    page.fill("#id_last_name", "Member")
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist li.success")
    shot("other-user-saved")
    assert privileges(member_user) == theirs_before
    assert member_user.last_name == "Member"

    # A superuser's page is view-only: no form to save, no password to set.
    page.goto(f"{live_server.url}/admin/auth/user/{root.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("#id_first_name").count() == 0
    shot("superuser-page")
    response = page.goto(f"{live_server.url}/admin/auth/user/{root.pk}/password/")
    assert response.status == 403
    assert page.csp_violations == [] and page.script_errors == []


def test_token_admin_never_shows_a_full_key(live_server, transactional_db, member_user, page: Any, shot) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    root = get_user_model().objects.create_superuser("e2e-root", "root@example.com", PASSWORD)
    other = get_user_model().objects.create_user("e2e-other", password=PASSWORD)
    existing = [Token.objects.create(user=user) for user in (root, member_user)]
    admin_login(page, live_server, root.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/authtoken/tokenproxy/")
    shot("token-list")
    html = page.content()
    for token in existing:
        assert token.key not in html
        assert f"{token.key[:4]}\u2026" in page.inner_text("#result_list")

    # Creating a token for a user: it is made, and shown masked only.
    page.goto(f"{live_server.url}/admin/authtoken/tokenproxy/add/")
    page.select_option("#id_user", str(other.pk))
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    shot("token-added")
    created = Token.objects.get(user=other)
    assert f"{created.key[:4]}\u2026" in page.inner_text("ul.messagelist")

    tokens = [*existing, created]
    pages = ["/admin/authtoken/tokenproxy/", f"/admin/authtoken/tokenproxy/{other.pk}/change/", "/admin/"]
    for path in pages:
        page.goto(f"{live_server.url}{path}")
        html = page.content()
        for token in tokens:
            assert token.key not in html, (path, token.key[:4])
    shot("token-page")
    assert page.csp_violations == [] and page.script_errors == []


def test_browsable_api_works_under_the_content_security_policy(live_server, member_user, page: Any, shot) -> None:
    IssueFactory(title="Seen under CSP", reporter=member_user)
    page.goto(f"{live_server.url}/api-auth/login/?next=/api/issues")
    page.fill("#id_username", member_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#submit-id-submit, input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(r".*/api/issues$"))
    response = page.reload()
    policy = response.headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"):
        assert directive in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "HTTP 200 OK" in page.inner_text(".response-info")
    assert "Seen under CSP" in page.inner_text(".response-info")
    shot("browsable-api")
    # Its scripts run: bootstrap's dropdown opens, and its "Log out" link (an inline handler allowed by its
    # hash, and nothing else inline) posts the logout form.
    page.click(".navbar .dropdown-toggle")
    page.click("text=Log out")
    page.wait_for_url(re.compile(r".*/api/issues$"))
    page.wait_for_selector("text=Authentication credentials were not provided")
    shot("browsable-api-logged-out")
    assert page.csp_violations == [], page.csp_violations
    assert page.script_errors == []
    assert [error for error in page.console_errors if "Content Security Policy" in error] == []


def test_api_docs_work_under_the_content_security_policy(live_server, transactional_db, page: Any, shot) -> None:
    response = page.goto(f"{live_server.url}/api/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    violations = list(page.csp_violations)
    page.csp_violations.clear()  # reported here, not again at teardown
    assert violations == []
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    page.locator(".opblock-summary").first.click()  # Swagger UI's scripts expand the operation
    page.wait_for_selector(".opblock-body")
    shot("api-docs")
    assert page.locator(".opblock").count() > 10
    assert page.csp_violations == [] and page.script_errors == []
