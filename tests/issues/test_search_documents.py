"""Every issue's full-text document (``IssueSearch``) is kept by the issue table's triggers: written for every inserted
row whatever the write path (API, import's COPY, ``bulk_create``, raw SQL under ``session_replication_role =
replica`` as bench/seed.py writes), rewritten when the title or the description changes, left alone by every other
change (a status change never touches the GIN index), and gone with its issue."""

import pytest
from django.db import connection, transaction

from issues import services
from issues.models import SEARCH_CONFIG, Issue, IssueSearch
from tests.factories import IssueFactory, default_project
from tests.helpers import csv_text, post_csv
from tests.issues.test_issue_tally import is_superuser


def stale_documents() -> list[int]:
    """Ids of issues whose stored document is missing or differs from the document of their current text."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT i.id FROM issues_issue i LEFT JOIN issues_issuesearch s ON s.issue_id = i.id
            WHERE s.document IS DISTINCT FROM
                setweight(to_tsvector('{SEARCH_CONFIG}', i.title), 'A')
                || setweight(to_tsvector('{SEARCH_CONFIG}', i.description), 'B')
            """
        )
        return [row[0] for row in cursor.fetchall()]


def document_version(issue_id: int) -> str:
    """The document row's xmin: a new one means the row was written again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM issues_issuesearch WHERE issue_id = %s", [issue_id])
        return cursor.fetchone()[0]


def matches(word: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT issue_id FROM issues_issuesearch WHERE document @@ websearch_to_tsquery('{SEARCH_CONFIG}', %s)",
            [word],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_every_insert_path_writes_the_document(maintainer, maintainer_client):
    created = maintainer_client.post(
        "/api/issues", {"title": "Login fails on Safari", "description": "The crashing page"}, format="json"
    )
    assert created.status_code == 201
    response = post_csv(
        maintainer_client, csv_text([["Export times out", "timeouts everywhere", "open", "low", "", ""]])
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    IssueFactory(title="Factory made", description="")
    Issue.objects.bulk_create([Issue(project=default_project(), title="Bulk created", description="refunds")])

    assert IssueSearch.objects.count() == Issue.objects.count() == 4
    assert stale_documents() == []
    # Stemmed: "fails" finds "failing" (and the title's "fails"), "crash" the description's "crashing".
    login = Issue.objects.get(title="Login fails on Safari").pk
    assert matches("failing") == {login}
    assert matches("crash") == {login}
    assert matches("timeout") == {Issue.objects.get(title="Export times out").pk}


@pytest.mark.django_db
def test_a_text_change_rewrites_the_document_and_nothing_else_does(maintainer):
    issue = services.issue_create(actor=maintainer, project=default_project(), title="Old words", description="")
    before = document_version(issue.pk)

    services.issue_update(
        actor=maintainer, issue_id=issue.pk, expected_version=issue.version, changes={"status": "closed"}
    )
    Issue.objects.filter(pk=issue.pk).update(priority="high", assignee=maintainer)
    assert document_version(issue.pk) == before  # status, priority, assignee: the document row is not written

    Issue.objects.filter(pk=issue.pk).update(title="Old words")  # the same text: not rewritten either
    assert document_version(issue.pk) == before

    issue.refresh_from_db()
    services.issue_update(
        actor=maintainer,
        issue_id=issue.pk,
        expected_version=issue.version,
        changes={"title": "New title", "description": "zebra"},
    )
    assert document_version(issue.pk) != before
    assert stale_documents() == []
    assert matches("zebra") == matches("new") == {issue.pk}
    assert matches("old") == set()


@pytest.mark.django_db
def test_the_document_goes_with_its_issue_and_with_a_rollback(maintainer):
    kept, deleted = IssueFactory.create_batch(2)
    deleted.delete()

    def create_then_fail() -> None:
        with transaction.atomic():
            services.issue_create(actor=maintainer, project=default_project(), title="Rolled back", description="")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert list(IssueSearch.objects.values_list("issue_id", flat=True)) == [kept.pk]
    assert matches("rolled") == set()


@pytest.mark.django_db
def test_replica_mode_writes_documents_too():
    """bench/seed.py inserts under session_replication_role = replica: the triggers fire ALWAYS."""
    assert is_superuser(), "the tests connect as a superuser (CI and make test do)"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO issues_issue (project_id, title, description, status, priority, version, created_at,"
            " updated_at) SELECT %s, 'replica ' || g, 'seeded text', 'open', 'low', 1, now(), now()"
            " FROM generate_series(1, 5) AS g",
            [default_project().pk],
        )
        cursor.execute("UPDATE issues_issue SET description = 'rewritten' WHERE title = 'replica 1'")
    assert IssueSearch.objects.count() == 5
    assert stale_documents() == []
    assert len(matches("seeded")) == 4
