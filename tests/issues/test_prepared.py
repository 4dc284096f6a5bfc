"""The statements every request runs are prepared once per connection (issues/fastpath/prepared.py):
the token lookup, the issue detail, PATCH's row lock and the whole list's pages. Django turns psycopg's
prepared statements off by default, so this checks the settings turn them back on and that the statements
really are prepared."""

import pytest
from django.db import connection

from tests.factories import CommentFactory, IssueFactory, LabelFactory

pytestmark = pytest.mark.django_db


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_auth_detail_and_patch_lock_are_prepared_and_reused(member_client):
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    CommentFactory(issue=issue)
    for _ in range(3):
        detail = member_client.get(f"/api/issues/{issue.pk}")
        assert detail.status_code == 200
        assert detail.json()["labels"] == ["bug"] and detail.json()["comment_count"] == 1
    statements = prepared_statements()
    assert len([s for s in statements if "authtoken_token" in s]) == 1  # one per connection, reused
    assert len([s for s in statements if "json_agg" in s]) == 1  # the detail with its first comments

    version = detail.json()["version"]
    for n in range(3):
        response = member_client.patch(f"/api/issues/{issue.pk}", {"title": f"t{n}", "version": version}, format="json")
        assert response.status_code == 200, response.content
        version = response.json()["version"]
    assert len([s for s in prepared_statements() if "FOR UPDATE" in s]) == 1  # PATCH's lock with the label names


def test_they_run_unprepared_when_prepared_statements_are_off(member_client, monkeypatch):
    """DB_PREPARED_STATEMENTS=0 (prepare_threshold None): same answers, nothing prepared."""
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    issue = IssueFactory(labels=[LabelFactory(name="bug")])
    response = member_client.get(f"/api/issues/{issue.pk}")
    assert response.status_code == 200 and response.json()["labels"] == ["bug"]
    listing = member_client.get("/api/issues")
    assert listing.status_code == 200 and listing.json()["count"] == 1
    assert listing.json()["results"][0]["labels"] == ["bug"]
    assert prepared_statements() == []
