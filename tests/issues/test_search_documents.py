"""Every issue's full-text document (``IssueSearch``) is kept by the issue table's triggers: written for every inserted
row whatever the write path (API, import's COPY, ``bulk_create``, raw SQL under ``session_replication_role =
replica`` as bench/seed.py writes), at once for a small statement and after the commit for a large one (queued in
``IssueSearchPending``, found by searches meanwhile), rewritten when the title or the description changes, left alone
by every other change (a status change never touches the GIN index), and gone with its issue."""

import threading
import time

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import connection, connections, transaction

from issues import search_index, services
from issues.models import SEARCH_CONFIG, SEARCH_INLINE_ROWS, Issue, IssueSearch, IssueSearchPending
from tests.factories import IssueFactory, default_project
from tests.helpers import csv_text, post_csv
from tests.issues.test_issue_tally import is_superuser


def stale_documents() -> list[int]:
    """Ids of issues whose stored document is missing or differs from the document of their current text (queued
    ones included: call it when the queue is empty)."""
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


def insert_raw(n: int, title: str = "queued zebra") -> None:
    """One INSERT statement of ``n`` issues, as an import's batch writes them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO issues_issue (project_id, title, description, status, priority, version, created_at,"
            " updated_at) SELECT %s, %s || ' ' || g, 'stripes everywhere', 'open', 'low', 1, now(), now()"
            " FROM generate_series(1, %s) AS g",
            [default_project().pk, title, n],
        )


def found(words: str) -> set[int]:
    query = SearchQuery(words, config=SEARCH_CONFIG, search_type="websearch")
    return set(search_index.issues_matching(Issue.objects.all(), query).values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_large_insert_is_queued_found_while_queued_and_indexed_later():
    insert_raw(SEARCH_INLINE_ROWS)  # a small statement: written at once
    assert search_index.queued() == 0
    insert_raw(SEARCH_INLINE_ROWS + 1, title="okapi zebra")  # a large one: queued
    queued = set(IssueSearchPending.objects.values_list("issue_id", flat=True))
    assert len(queued) == SEARCH_INLINE_ROWS + 1
    assert IssueSearch.objects.filter(issue_id__in=queued).count() == 0
    # Found while queued (document computed on the fly), with the stored ones: exact either way.
    every = set(Issue.objects.values_list("pk", flat=True))
    assert found("zebra") == every
    assert found("okapis") == found("okapi") == queued
    assert found("striped") == every  # the descriptions' "stripes", stemmed
    # The computed document is the stored one (Django's SearchVector and the triggers' SQL agree).
    computed = dict(Issue.objects.annotate(doc=search_index.computed_document()).values_list("pk", "doc"))
    stored = dict(IssueSearch.objects.values_list("issue_id", "document"))
    assert stored == {pk: doc for pk, doc in computed.items() if pk not in queued}
    ranked = Issue.objects.annotate(rank=search_index.rank(SearchQuery("okapi zebra", config=SEARCH_CONFIG)))
    before = dict(ranked.filter(pk__in=queued).values_list("pk", "rank"))

    assert search_index.index_pending(batch=40) == SEARCH_INLINE_ROWS + 1  # several batches
    assert search_index.queued() == 0
    assert stale_documents() == []
    assert found("okapi") == queued and found("zebra") == every
    assert dict(ranked.filter(pk__in=queued).values_list("pk", "rank")) == before


@pytest.mark.django_db(transaction=True)
def test_an_import_is_indexed_after_its_commit(maintainer_client):
    rows = [[f"Imported zebra {i}", "stripes", "open", "low", "", ""] for i in range(SEARCH_INLINE_ROWS + 50)]
    response = post_csv(maintainer_client, csv_text(rows))
    assert response.status_code == 200, response.content
    assert response.json()["created"] == SEARCH_INLINE_ROWS + 50
    deadline = time.monotonic() + 30
    while search_index.queued() and time.monotonic() < deadline:  # a thread of this process indexes them
        time.sleep(0.05)
    assert search_index.queued() == 0
    assert IssueSearch.objects.count() == Issue.objects.count() == SEARCH_INLINE_ROWS + 50
    assert stale_documents() == []


@pytest.mark.django_db(transaction=True)
def test_a_text_change_racing_the_indexer_is_not_lost():
    """A title UPDATE of a queued issue, uncommitted while the indexer runs: the indexer waits for it (FOR SHARE)
    and indexes the new text; nothing leaves a stale document behind."""
    insert_raw(SEARCH_INLINE_ROWS + 1, title="original")
    target = Issue.objects.order_by("pk").values_list("pk", flat=True).first()
    updated, release = threading.Event(), threading.Event()

    def update_and_hold() -> None:
        try:
            with transaction.atomic():
                Issue.objects.filter(pk=target).update(title="renamed okapi")
                updated.set()
                release.wait(10)
        finally:
            connections.close_all()

    def index() -> None:
        try:
            search_index.index_pending()
        finally:
            connections.close_all()

    writer = threading.Thread(target=update_and_hold)
    writer.start()
    assert updated.wait(10)
    indexer = threading.Thread(target=index)
    indexer.start()
    indexer.join(1.0)
    assert indexer.is_alive()  # waiting for the writer's row lock
    release.set()
    writer.join(10)
    indexer.join(10)
    assert not indexer.is_alive()
    assert search_index.queued() == 0
    assert stale_documents() == []
    assert found("okapi") == {target}


@pytest.mark.django_db
def test_the_list_finds_queued_issues_by_their_words(maintainer_client):
    """An import's issues are found by ``q`` before their documents are written, ranked too (the import's
    ``on_commit`` indexing does not run inside the test's transaction, so they stay queued here)."""
    rows = [
        [f"Queued walrus {i}", "tusks" if i % 2 else "", "open", "low", "", ""] for i in range(SEARCH_INLINE_ROWS + 1)
    ]
    response = post_csv(maintainer_client, csv_text(rows))
    assert response.status_code == 200, response.content
    assert search_index.queued() == SEARCH_INLINE_ROWS + 1
    IssueFactory(title="Indexed walrus", description="")

    body = maintainer_client.get("/api/issues", {"q": "walruses", "page_size": 100}).json()
    assert body["count"] == SEARCH_INLINE_ROWS + 2
    assert len(body["results"]) == 100
    body = maintainer_client.get("/api/issues", {"q": "walrus tusk", "ordering": "relevance"}).json()
    assert body["count"] == (SEARCH_INLINE_ROWS + 1) // 2
    assert body["results"][0]["title"].startswith("Queued walrus")

    search_index.index_pending()
    again = maintainer_client.get("/api/issues", {"q": "walrus tusk", "ordering": "relevance"}).json()
    assert again == body
