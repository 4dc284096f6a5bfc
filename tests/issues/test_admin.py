"""The Django admin saves through the services: version bump, events with source admin, resolved_at, numbers; it
keeps the project rules (an issue's labels are its project's, its assignee can see the project, it never changes
project) and manages projects with their members."""

import re

import pytest

from issues.models import Comment, Issue, IssueEvent, Label, Membership, Project, Visibility
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
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
        "project": default_project().pk,
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
    assert (issue.project_id, issue.reporter_id) == (default_project().pk, staff.pk)
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
    response = client.post(
        "/admin/issues/label/add/", {"project": default_project().pk, "name": "a,b", "color": "#cccccc"}
    )
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


# --- Projects and their members ---------------------------------------------------------------------------------


def members_inline(*rows: tuple[int, str], initial: int = 0) -> dict:
    """The project form's members inline: ``rows`` of (user id, role)."""
    data = {
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, (user_id, role) in enumerate(rows):
        data[f"memberships-{i}-user"] = str(user_id)
        data[f"memberships-{i}-role"] = role
    return data


def test_staff_add_a_project_with_its_members_inline(client, staff, member, viewer):
    client.force_login(staff)
    assert client.get("/admin/issues/project/add/").status_code == 200
    data = {"key": " web ", "name": "Website", "description": "", "visibility": "private"}
    response = client.post(
        "/admin/issues/project/add/", {**data, **members_inline((member.pk, "maintainer"), (viewer.pk, "viewer"))}
    )
    assert response.status_code == 302, response.content[:3000]
    project = Project.objects.get(key="WEB")  # upper-cased, as keys are
    assert (project.name, project.visibility) == ("Website", Visibility.PRIVATE)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"member": "maintainer", "viewer": "viewer"}
    listing = client.get("/admin/issues/project/").content.decode()
    assert "WEB" in listing and "Website" in listing


def test_a_duplicate_member_or_key_is_a_form_error(client, staff, member):
    client.force_login(staff)
    ProjectFactory(key="OPS")
    data = {"key": "ops", "name": "Ops again", "description": "", "visibility": "internal"}
    response = client.post("/admin/issues/project/add/", {**data, **members_inline()})
    assert response.status_code == 200
    assert "Project with this Key already exists." in response.content.decode()
    data = {"key": "NEW", "name": "New", "description": "", "visibility": "internal"}
    twice = members_inline((member.pk, "member"), (member.pk, "viewer"))
    response = client.post("/admin/issues/project/add/", {**data, **twice})
    assert response.status_code == 200
    assert "Please correct the duplicate data for user." in response.content.decode()
    assert not Project.objects.filter(key="NEW").exists()
    assert not Membership.objects.filter(project__key="NEW").exists()


def test_a_projects_key_is_read_only_once_created_and_members_change_inline(client, staff, member):
    client.force_login(staff)
    project = ProjectFactory(key="WEB", name="Website")
    membership = add_member(member, project, "viewer")
    page = client.get(f"/admin/issues/project/{project.pk}/change/").content.decode()
    assert 'name="key"' not in page and "WEB" in page
    rows = members_inline((member.pk, "maintainer"), initial=1)
    rows["memberships-0-id"] = str(membership.pk)
    rows["memberships-0-project"] = str(project.pk)
    data = {"key": "XYZ", "name": "Web site", "description": "", "visibility": "internal", **rows}
    response = client.post(f"/admin/issues/project/{project.pk}/change/", data)
    assert response.status_code == 302, response.content[:3000]
    project.refresh_from_db()
    assert (project.key, project.name, project.visibility) == ("WEB", "Web site", Visibility.INTERNAL)
    assert Membership.objects.get(pk=membership.pk).role == "maintainer"


def test_projects_are_for_staff_with_the_staff_groups_permissions(client, staff, maintainer):
    from django.contrib.auth.models import Group

    perms = set(Group.objects.get(name="staff").permissions.values_list("codename", flat=True))
    wanted = {"view_project", "add_project", "change_project"}
    wanted |= {"view_membership", "add_membership", "change_membership", "delete_membership"}
    assert wanted <= perms
    assert "delete_project" not in perms  # superusers only: a project's labels and members would go with it
    assert not Group.objects.filter(name__in=["viewer", "member", "maintainer"]).exists()  # gone since 0010
    client.force_login(maintainer)  # a maintainer of the default project is not staff
    assert client.get("/admin/issues/project/").status_code == 302  # to the login page
    client.force_login(staff)
    assert client.get("/admin/issues/project/").status_code == 200
    project = ProjectFactory(key="WEB")
    assert client.post(f"/admin/issues/project/{project.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Project.objects.filter(pk=project.pk).exists()


# --- Issues in projects -----------------------------------------------------------------------------------------


def add_form(project: Project, **changes) -> dict:
    data = {
        "project": project.pk,
        "title": "From admin",
        "description": "",
        "status": "open",
        "priority": "medium",
        "assignee": "",
        "labels": [],
        **NO_EVENTS,
    }
    data.update(changes)
    return data


def test_admin_add_in_a_chosen_project_takes_its_next_number(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    IssueFactory(project=web)
    IssueFactory(project=web)
    IssueFactory()  # the default project's numbers are its own
    bug = LabelFactory(project=web, name="bug")
    response = client.post("/admin/issues/issue/add/", add_form(web, title="Third", labels=[bug.pk]))
    assert response.status_code == 302, response.content[:3000]
    issue = Issue.objects.get(title="Third")
    assert (issue.project_id, issue.number, issue.key) == (web.pk, 3, "WEB-3")
    assert list(issue.labels.values_list("name", flat=True)) == ["bug"]
    assert list(IssueEvent.objects.filter(issue=issue).values_list("type", "source")) == [("created", "admin")]
    page = client.get(f"/admin/issues/issue/{issue.pk}/change/").content.decode()
    assert "WEB-3" in page


def test_the_add_form_starts_in_the_default_project(client, staff):
    client.force_login(staff)
    response = client.get("/admin/issues/issue/add/")
    assert response.context["adminform"].form.initial["project"] == str(default_project().pk)


def test_admin_refuses_a_label_of_another_project(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    foreign = LabelFactory(name="web-only", project=web)
    own = LabelFactory(name="main-bug")
    offered = client.get("/admin/issues/issue/add/").content.decode()  # every project's, named with its key
    assert f'<option value="{foreign.pk}">WEB: web-only</option>' in offered
    assert f'<option value="{own.pk}">MAIN: main-bug</option>' in offered
    response = client.post("/admin/issues/issue/add/", add_form(default_project(), labels=[own.pk, foreign.pk]))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["labels"] == ["Only labels of project MAIN can be given; not 'web-only'."]
    assert not Issue.objects.exists()
    assert not Label.objects.filter(project=default_project(), name="web-only").exists()  # nor made in MAIN

    # On the change form only the issue's project's labels are offered, and another one is refused.
    issue = IssueFactory()
    page = client.get(f"/admin/issues/issue/{issue.pk}/change/")
    assert list(page.context["adminform"].form.fields["labels"].queryset) == [own]
    assert f'<option value="{own.pk}">main-bug</option>' in page.content.decode()
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", admin_form(issue, labels=[foreign.pk]))
    assert response.status_code == 200
    assert "labels" in response.context["adminform"].form.errors
    issue.refresh_from_db()
    assert (issue.version, list(issue.labels.all())) == (1, [])
    assert not IssueEvent.objects.exists()


def test_admin_refuses_an_assignee_who_cannot_see_a_private_project(client, staff, member):
    client.force_login(staff)
    web = ProjectFactory(key="WEB", visibility=Visibility.PRIVATE)
    response = client.post("/admin/issues/issue/add/", add_form(web, assignee=member.pk))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["assignee"] == [
        "member cannot see project WEB (not a member of this private project) and cannot be assigned its issues."
    ]
    assert not Issue.objects.exists()

    issue = IssueFactory(project=web)
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", admin_form(issue, assignee=member.pk))
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    issue.refresh_from_db()
    assert (issue.assignee_id, issue.version) == (None, 1)

    # A member of the project (any role), or anyone on an internal project, can be assigned.
    add_member(member, web, "viewer")
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", admin_form(issue, assignee=member.pk))
    assert response.status_code == 302, response.content[:3000]
    issue.refresh_from_db()
    assert (issue.assignee_id, issue.version) == (member.pk, 2)
    outsider = UserFactory(username="outsider")
    response = client.post("/admin/issues/issue/add/", add_form(default_project(), assignee=outsider.pk))
    assert response.status_code == 302, response.content[:3000]


def test_an_issue_never_changes_project_in_the_admin(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    issue = IssueFactory()
    page = client.get(f"/admin/issues/issue/{issue.pk}/change/")
    assert "project" not in page.context["adminform"].form.fields
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", admin_form(issue, project=web.pk, title="T2"))
    assert response.status_code == 302, response.content[:3000]
    issue.refresh_from_db()
    assert (issue.project_id, issue.title) == (default_project().pk, "T2")


def test_issue_list_searches_by_key_and_filters_by_project(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    web_issues = [IssueFactory(project=web, title=f"Web {i}") for i in range(3)]
    main_issue = IssueFactory(title="Main 2")

    def found(**params) -> set[int]:
        response = client.get("/admin/issues/issue/", params)
        assert response.status_code == 200
        return {issue.pk for issue in response.context["cl"].result_list}

    second = Issue.objects.get(pk=web_issues[1].pk)
    assert found(q="web-2") == {second.pk}  # the key, ignoring case
    assert found(q=f"WEB-{second.number}") == found(q=second.key) == {second.pk}
    assert found(q=main_issue.key) == {main_issue.pk}
    assert found(q="Main") == {main_issue.pk}  # titles as before
    assert found(q="WEB-99") == set() and found(q="WEB-99999999999999999999") == set()
    assert found(project__id__exact=web.pk) == {issue.pk for issue in web_issues}
    listing = client.get("/admin/issues/issue/").content.decode()
    assert "WEB-1" in listing and main_issue.key in listing


def test_admin_lists_cost_the_same_queries_for_few_and_many_rows(client, staff):
    """Issues are shown by their key (their project's): the lists read the projects along."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CommentFactory

    client.force_login(staff)
    paths = ["/admin/issues/issue/", "/admin/issues/comment/", "/admin/issues/issueevent/", "/admin/issues/label/"]

    def costs() -> list[int]:
        result = []
        for path in paths:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            result.append(len(queries))
        return result

    def add_rows(project: Project) -> None:
        comment = CommentFactory(issue=IssueFactory(project=project))
        IssueEvent.objects.create(issue=comment.issue, type="commented", details={})
        LabelFactory(project=project)

    add_rows(default_project())
    few = costs()
    for i in range(5):
        add_rows(ProjectFactory(key=f"P{i}X"))
    assert costs() == few


# --- Labels in projects -----------------------------------------------------------------------------------------


def test_label_names_are_unique_per_project_ignoring_case(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    LabelFactory(name="Bug")
    response = client.post("/admin/issues/label/add/", {"project": default_project().pk, "name": "bug"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == [
        "A label with this name already exists in this project."
    ]
    data = {"project": web.pk, "name": "bug", "color": "#cccccc"}
    assert client.post("/admin/issues/label/add/", data).status_code == 302
    assert set(Label.objects.values_list("project__key", "name")) == {("MAIN", "Bug"), ("WEB", "bug")}
    # A rename into a taken name is refused too; the project is read-only once the label exists.
    label = Label.objects.get(project=web)
    LabelFactory(project=web, name="ui")
    response = client.post(f"/admin/issues/label/{label.pk}/change/", {"name": "UI", "color": "#cccccc"})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    data = {"project": default_project().pk, "name": "defect", "color": "#cccccc"}
    assert client.post(f"/admin/issues/label/{label.pk}/change/", data).status_code == 302
    label.refresh_from_db()
    assert (label.project_id, label.name) == (web.pk, "defect")


def test_label_list_shows_and_filters_by_project(client, staff):
    client.force_login(staff)
    web = ProjectFactory(key="WEB")
    in_web = LabelFactory(project=web, name="web-label")
    LabelFactory(name="main-label")
    response = client.get("/admin/issues/label/", {"project__id__exact": web.pk})
    assert [label.pk for label in response.context["cl"].result_list] == [in_web.pk]
    assert "WEB" in response.content.decode()


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
    assert before == (True, False, ["staff"], [])
    response = client.post(f"/admin/auth/user/{staff.pk}/change/", user_form(staff, **escalation(first_name="Eve")))
    assert response.status_code == 302, response.content[:2000]
    assert privileges(staff) == before
    assert staff.first_name == "Eve"  # the rest of the form was saved: only the privileges were refused


def test_staff_crafted_post_cannot_raise_another_user(client, staff, member):
    client.force_login(staff)
    before = privileges(member)
    assert before == (False, False, [], [])
    response = client.post(f"/admin/auth/user/{member.pk}/change/", user_form(member, **escalation()))
    assert response.status_code == 302, response.content[:2000]
    assert privileges(member) == before
    # Nor can they take a privilege away.
    client.post(f"/admin/auth/user/{staff.pk}/change/", user_form(staff, groups=[]))
    assert privileges(staff)[2] == ["staff"]


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
