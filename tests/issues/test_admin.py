"""The Django admin saves through the services: version bump, events with source admin, resolved_at."""

import re

import pytest

from issues.models import Comment, Issue, IssueEvent, Label
from tests.factories import IssueFactory, LabelFactory
from tests.helpers import privileges

pytestmark = pytest.mark.django_db


# The issue form's inline of events, empty (its management form).
NO_EVENTS = {
    "events-TOTAL_FORMS": "0",
    "events-INITIAL_FORMS": "0",
    "events-MIN_NUM_FORMS": "0",
    "events-MAX_NUM_FORMS": "1000",
}


def admin_form(issue: Issue, **changes) -> dict:
    data = {
        "title": issue.title,
        "description": issue.description,
        "status": issue.status,
        "priority": issue.priority,
        "assignee": issue.assignee_id or "",
        "labels": [label.pk for label in issue.labels.all()],
        "seen_version": issue.version,
        **NO_EVENTS,
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
        **NO_EVENTS,
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


@pytest.mark.django_db(transaction=True)
def test_admin_label_delete_refused_as_busy_says_so_and_changes_nothing(client, staff):
    """A change holding the label lock (an import, say) makes the deletion give up after its bounded wait: the
    admin says nothing was deleted, and neither the label, the issue nor the admin's history changed."""
    import threading

    import psycopg
    from django.contrib.admin.models import LogEntry

    from issues.services import LABEL_USE_LOCK
    from tests.servers import database_url

    client.force_login(staff)
    label = LabelFactory(name="held")
    issue = IssueFactory(labels=[label])
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with psycopg.connect(database_url()) as conn:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LABEL_USE_LOCK])
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(10)
        response = client.post(f"/admin/issues/label/{label.pk}/delete/", {"post": "yes"}, follow=True)
    finally:
        release.set()
        holder.join()
    assert response.redirect_chain[0][0] == f"/admin/issues/label/{label.pk}/change/"
    text = response.content.decode()
    assert "Nothing was deleted." in text and "deleted successfully" not in text
    assert Label.objects.filter(pk=label.pk).exists()
    issue.refresh_from_db()
    assert issue.version == 1
    assert not LogEntry.objects.filter(object_id=str(label.pk)).exists()


def test_admin_refuses_label_names_with_separators(client, staff):
    client.force_login(staff)
    response = client.post("/admin/issues/label/add/", {"name": "a,b", "color": "#cccccc"})
    assert response.status_code == 200  # the form comes back with the error
    assert not Label.objects.exists()


def test_admin_comment_event_has_source_admin_and_comments_cannot_be_deleted(client, staff):
    client.force_login(staff)
    issue = IssueFactory()
    response = client.post("/admin/issues/comment/add/", {"issue": issue.pk, "body": "from the admin"})
    assert response.status_code == 302
    event = IssueEvent.objects.get(issue=issue)
    assert (event.type, event.source) == ("commented", "admin")
    comment = Comment.objects.get()
    assert client.post(f"/admin/issues/comment/{comment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Comment.objects.filter(pk=comment.pk).exists()


# --- The admin is no ladder: privileges are changed by superusers only ------------------------------------------

PRIVILEGE_INPUTS = ('name="is_superuser"', 'name="is_staff"', 'name="groups"', 'name="user_permissions"')


@pytest.fixture
def superuser(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.com", "root-password-123")


def user_form(user, **changes) -> dict:
    """What the user change page posts, plus whatever a crafted request adds."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(changes)
    return data


def escalation(**extra) -> dict:
    from django.contrib.auth.models import Group, Permission

    return {
        "is_superuser": "on",
        "is_staff": "on",
        "groups": [group.pk for group in Group.objects.all()],
        "user_permissions": [perm.pk for perm in Permission.objects.filter(codename__in=["delete_user", "add_group"])],
        **extra,
    }


def test_staff_sees_the_privilege_fields_read_only_on_their_own_page(client, staff):
    client.force_login(staff)
    response = client.get(f"/admin/auth/user/{staff.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="first_name"' in html  # the page is editable...
    for field in PRIVILEGE_INPUTS:  # ...but not these
        assert field not in html
    assert "Superuser status" in html and "Staff status" in html  # shown, read-only


def test_staff_crafted_post_cannot_make_themselves_superuser(client, staff):
    client.force_login(staff)
    before = privileges(staff)
    assert before == (True, False, ["maintainer", "staff"], [])
    response = client.post(f"/admin/auth/user/{staff.pk}/change/", user_form(staff, **escalation(first_name="Eve")))
    assert response.status_code == 302, response.content[:2000]
    assert privileges(staff) == before
    assert staff.first_name == "Eve"  # the rest of the form was saved: only the privileges were refused


def test_staff_crafted_post_cannot_raise_another_user(client, staff, member):
    client.force_login(staff)
    before = privileges(member)
    assert before == (False, False, ["member"], [])
    response = client.post(f"/admin/auth/user/{member.pk}/change/", user_form(member, **escalation()))
    assert response.status_code == 302, response.content[:2000]
    assert privileges(member) == before
    # Nor can they take a privilege away.
    client.post(f"/admin/auth/user/{staff.pk}/change/", user_form(staff, groups=[]))
    assert privileges(staff)[2] == ["maintainer", "staff"]


def test_staff_crafted_add_cannot_create_a_superuser(client, staff):
    from django.contrib.auth import get_user_model

    client.force_login(staff)
    data = {
        "username": "mallory",
        "usable_password": "true",
        "password1": "Pa55-word-xyz",
        "password2": "Pa55-word-xyz",
    }
    response = client.post("/admin/auth/user/add/", {**data, **escalation()})
    assert response.status_code == 302, response.content[:2000]
    assert privileges(get_user_model().objects.get(username="mallory")) == (False, False, [], [])


def test_staff_cannot_change_a_superuser_or_another_staff_account(client, staff, superuser):
    from tests.factories import UserFactory

    colleague = UserFactory(username="colleague", is_staff=True)
    client.force_login(staff)
    for target in (superuser, colleague):
        page = client.get(f"/admin/auth/user/{target.pk}/change/")
        assert page.status_code == 200  # view only
        assert 'name="_save"' not in page.content.decode() and 'name="username"' not in page.content.decode()
        response = client.post(f"/admin/auth/user/{target.pk}/change/", user_form(target, first_name="Owned"))
        assert response.status_code == 403
        target.refresh_from_db()
        assert target.first_name != "Owned"
        # Nor set its password (a takeover), nor delete it.
        assert client.get(f"/admin/auth/user/{target.pk}/password/").status_code == 403
        password = {"password1": "Taken-over-123", "password2": "Taken-over-123", "usable_password": "true"}
        assert client.post(f"/admin/auth/user/{target.pk}/password/", password).status_code == 403
        target.refresh_from_db()
        assert not target.check_password("Taken-over-123")


def test_staff_cannot_change_groups(client, staff):
    from django.contrib.auth.models import Group, Permission

    client.force_login(staff)
    group = Group.objects.get(name="staff")
    before = set(group.permissions.values_list("pk", flat=True))
    assert client.get(f"/admin/auth/group/{group.pk}/change/").status_code == 200  # view only
    everything = list(Permission.objects.values_list("pk", flat=True))
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "staff", "permissions": everything})
    assert response.status_code == 403
    assert set(group.permissions.values_list("pk", flat=True)) == before
    assert client.post("/admin/auth/group/add/", {"name": "mine", "permissions": everything}).status_code == 403
    assert not Group.objects.filter(name="mine").exists()


def test_a_superuser_still_grants_privileges(client, superuser, member):
    from django.contrib.auth.models import Group

    client.force_login(superuser)
    page = client.get(f"/admin/auth/user/{member.pk}/change/").content.decode()
    for field in PRIVILEGE_INPUTS:
        assert field in page
    staff_group = Group.objects.get(name="staff")
    form = user_form(member, is_staff="on", groups=[staff_group.pk])
    assert client.post(f"/admin/auth/user/{member.pk}/change/", form).status_code == 302
    assert privileges(member) == (True, False, ["staff"], [])


# --- API tokens are never shown in full ---------------------------------------------------------------------------


@pytest.fixture
def tokens(db, member, staff, superuser):
    from rest_framework.authtoken.models import Token

    return [Token.objects.create(user=user) for user in (member, staff, superuser)]


def listed(html: str) -> int:
    """How many rows the change list says it shows ("3 Tokens" under the table)."""
    match = re.search(r'<p class="paginator">\s*(\d+) Tokens?\s', html)
    assert match, html[-3000:]
    return int(match.group(1))


def assert_no_key(html: str, tokens) -> None:
    for token in tokens:
        assert token.key not in html
        assert token.key[:8] not in html  # nothing longer than the 4-character prefix


def test_token_list_and_pages_show_only_a_masked_prefix(client, superuser, tokens):
    client.force_login(superuser)
    listing = client.get("/admin/authtoken/tokenproxy/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert_no_key(html, tokens)
    for token in tokens:
        assert f"{token.key[:4]}\u2026" in html
    assert listed(html) == 3

    for token in tokens:
        for page in ("change", "delete", "history"):
            response = client.get(f"/admin/authtoken/tokenproxy/{token.user_id}/{page}/")
            assert response.status_code == 200
            assert_no_key(response.content.decode(), tokens)
        # Deleting a user lists the objects that go with it: its token, masked.
        response = client.get(f"/admin/auth/user/{token.user_id}/delete/")
        assert response.status_code == 200
        assert f"{token.key[:4]}\u2026" in response.content.decode()
        assert_no_key(response.content.decode(), tokens)


def test_tokens_cannot_be_searched_or_filtered_by_key(client, superuser, staff, tokens):
    client.force_login(superuser)
    key = tokens[0].key
    for query in (key, key[:6]):
        response = client.get("/admin/authtoken/tokenproxy/", {"q": query})
        assert response.status_code == 200
        assert listed(response.content.decode()) == 0  # the page echoes the query, and matches nothing
        assert_no_key(response.content.decode(), tokens[1:])
    by_username = client.get("/admin/authtoken/tokenproxy/", {"q": "member"})
    assert listed(by_username.content.decode()) == 1
    # Lookups in the URL would be oracles for the key: refused (400), on the token and on the user list.
    for params in ({"key__startswith": key[:2]}, {"pk__startswith": key[:2]}, {"key": key}, {"_to_field": "key"}):
        assert client.get("/admin/authtoken/tokenproxy/", params).status_code == 400, params
    client.force_login(staff)
    assert client.get("/admin/auth/user/", {"auth_token__key__startswith": key[:2]}).status_code == 400
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403  # staff have no token rights at all


def test_superuser_creates_a_token_without_seeing_it(client, superuser, member):
    from rest_framework.authtoken.models import Token

    client.force_login(superuser)
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": member.pk}, follow=True)
    assert response.status_code == 200
    token = Token.objects.get(user=member)
    html = response.content.decode()
    assert f"{token.key[:4]}\u2026" in html  # "The token “abcd…” was added successfully."
    assert_no_key(html, [token])
    # Nor in "Recent actions" on the admin index, nor in the token's history.
    assert_no_key(client.get("/admin/").content.decode(), [token])
    assert_no_key(client.get(f"/admin/authtoken/tokenproxy/{member.pk}/history/").content.decode(), [token])
    # The token can be revoked; it is never changed in place.
    assert client.post(f"/admin/authtoken/tokenproxy/{member.pk}/change/", {"user": superuser.pk}).status_code == 403
    assert client.post(f"/admin/authtoken/tokenproxy/{member.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=member).exists()


# --- Content-Security-Policy ----------------------------------------------------------------------------------------


def test_html_pages_carry_the_content_security_policy(client, staff):
    anonymous = ["/admin/login/", "/api-auth/login/", "/api/docs"]
    logged_in = ["/admin/", f"/admin/auth/user/{staff.pk}/change/", "/api/issues"]
    responses = [(path, client.get(path, HTTP_ACCEPT="text/html")) for path in anonymous]
    client.force_login(staff)
    responses += [(path, client.get(path, HTTP_ACCEPT="text/html")) for path in logged_in]
    for path, response in responses:
        assert response["Content-Type"].startswith("text/html"), path
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"):
            assert directive in policy, (path, policy)
        assert "frame-ancestors 'none'" in policy
        script_src = next(part for part in policy.split("; ") if part.startswith("script-src "))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


def test_the_one_inline_handler_allowed_is_the_browsable_apis_logout_link(rf, staff, settings):
    """script-src allows, by its hash, exactly the handler rest_framework's navbar puts on "Log out"."""
    import base64
    import hashlib

    from django.middleware.csrf import get_token
    from rest_framework.templatetags.rest_framework import optional_logout

    request = rf.get("/api/issues")
    snippet = optional_logout(request, staff, get_token(request))
    assert f"onclick='{settings.BROWSABLE_API_LOGOUT_ONCLICK}'" in snippet
    digest = base64.b64encode(hashlib.sha256(settings.BROWSABLE_API_LOGOUT_ONCLICK.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"]
