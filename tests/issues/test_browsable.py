"""The browsable API renders every endpoint as HTML for a logged-in user, with forms that work, and shows nothing
of a project the user cannot see."""

import pytest

from issues.models import Issue, Visibility
from tests.factories import CommentFactory, IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member
from tests.helpers import READ_PATHS

pytestmark = pytest.mark.django_db

# ``{issue}`` by id and by key (``{issue_key}``), and the projects' pages (``{project}``: a key).
PAGES = [
    "/api/",
    *READ_PATHS,
    "/api/issues/{issue_key}",
    "/api/projects",
    "/api/projects/{project}",
    "/api/projects/{project}/members",
]


def page_path(path: str, issue: Issue) -> str:
    issue.refresh_from_db()  # its number
    return path.format(
        issue=issue.pk, issue_key=issue.key, label=issue.labels.get().pk, project=issue.project.key.lower()
    )


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_html(client, maintainer, path):
    client.force_login(maintainer)
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    CommentFactory(issue=issue)
    response = client.get(page_path(path, issue), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


def test_pages_show_nothing_of_a_project_the_user_cannot_see(client, member):
    """Every page (its data, its forms' choices, its filters) as a member of the default project: the private
    project's key, name, issue, label and comment appear nowhere (users are not a project's: ``GET /api/users``
    lists them all), and the pages of its issue and of the project itself are the 404 of an unknown one."""
    hidden = ProjectFactory(key="QZSECRET", name="Quartzite team", visibility=Visibility.PRIVATE)
    add_member(UserFactory(username="quartz-insider"), hidden, "maintainer")
    secret = IssueFactory(
        project=hidden, title="Zebra crossing", labels=[LabelFactory(project=hidden, name="zz-wombat")]
    )
    CommentFactory(issue=secret, body="Xylophone comment")
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    CommentFactory(issue=issue)
    secret.refresh_from_db()
    client.force_login(member)
    contents = [b"Quartzite", b"Zebra crossing", b"zz-wombat", b"Xylophone"]
    for path in PAGES:
        response = client.get(page_path(path, issue), HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert [word for word in [b"QZSECRET", b"qzsecret", *contents] if word in response.content] == [], path
    # Asked for by name (the key is in the page's own URL then), they answer as unknown ones do.
    for path, unknown in (
        (f"/api/issues/{secret.pk}", f"/api/issues/{secret.pk + 1000}"),
        (f"/api/issues/{secret.key}", "/api/issues/QZSECRET-1000"),
        ("/api/projects/QZSECRET", "/api/projects/QZNOTHING"),
    ):
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 404, path
        assert [word for word in contents if word in response.content] == [], path
        assert client.get(path).json() == client.get(unknown).json(), path


def test_detail_form_is_prefilled_with_the_version(client, maintainer):
    client.force_login(maintainer)
    issue = IssueFactory(title="Shown in form")
    Issue.objects.filter(pk=issue.pk).update(version=7)
    content = client.get(f"/api/issues/{issue.pk}", HTTP_ACCEPT="text/html").content.decode()
    assert "&quot;version&quot;: 7" in content
    assert "Shown in form" in content


def test_session_patch_needs_the_csrf_token_like_the_forms_send(maintainer):
    """The browsable API's forms send PATCH from JavaScript with the session cookie and an X-CSRFToken header."""
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(maintainer)
    issue = IssueFactory()
    page = csrf_client.get(f"/api/issues/{issue.pk}", HTTP_ACCEPT="text/html")
    token = page.cookies["csrftoken"].value
    url = f"/api/issues/{issue.pk}"
    body = '{"title": "Via the form", "version": 1}'
    refused = csrf_client.patch(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    response = csrf_client.patch(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("Via the form", 2)
