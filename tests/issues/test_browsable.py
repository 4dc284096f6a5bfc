"""The browsable API renders every endpoint as HTML for a logged-in user, with forms that work."""

import pytest

from issues.models import Issue
from tests.factories import CommentFactory, IssueFactory, LabelFactory
from tests.helpers import READ_PATHS

pytestmark = pytest.mark.django_db

PAGES = ["/api/", *READ_PATHS]


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_html(client, maintainer, path):
    client.force_login(maintainer)
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    CommentFactory(issue=issue)
    response = client.get(path.format(issue=issue.pk, label=issue.labels.get().pk), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


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
