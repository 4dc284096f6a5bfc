"""A word search whose filters a search document can apply too (projects, labels, creation dates) is counted, and
newest first paged, by the documents alone (``IssueSearch.project_id`` and ``created_at``, copies of the issue's,
``search_index.documents_matching``): the copies stay right on every write path, and such a search answers what the
same search through the issue table answers (forced there by a status qualifier that allows every status)."""

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from issues import search_index, selectors
from issues.access import access_for
from issues.filters import IssueFilterSet
from issues.models import SEARCH_INLINE_ROWS, Issue, IssueSearch, Status
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, add_member, default_project
from tests.issues.test_search_documents import insert_raw

pytestmark = pytest.mark.django_db
EVERY_STATUS = "status:" + ",".join(Status.values)  # constrains nothing, but needs the issue's row
# The count alone (pages after the first), or with the first page's ids (``CountSource.count_and_first``).
COUNT_OF_DOCUMENTS = re.compile(r'SELECT COUNT\(\*\) AS "(__count|total)"[^;]*? FROM "issues_issuesearch"')


def drifted() -> list[int]:
    """Issues without a document, or whose document's copies differ from the issue's project and creation time."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.id FROM issues_issue i LEFT JOIN issues_issuesearch s ON s.issue_id = i.id"
            " WHERE s.project_id IS DISTINCT FROM i.project_id OR s.created_at IS DISTINCT FROM i.created_at"
        )
        return [row[0] for row in cursor.fetchall()]


def test_the_copies_follow_every_write_path(maintainer_client):
    created = maintainer_client.post("/api/issues", {"title": "Made by the API"}, format="json")
    assert created.status_code == 201
    IssueFactory(title="Factory made")
    Issue.objects.bulk_create([Issue(project=default_project(), title="Bulk made", description="")])
    insert_raw(SEARCH_INLINE_ROWS + 1)  # queued: no document yet
    assert len(drifted()) == SEARCH_INLINE_ROWS + 1
    search_index.index_pending()
    assert drifted() == []
    # Nothing changes an issue's creation time today; if something did, the copy would follow.
    moved = Issue.objects.order_by("pk").first()
    Issue.objects.filter(pk=moved.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert drifted() == []
    assert IssueSearch.objects.count() == Issue.objects.count() == SEARCH_INLINE_ROWS + 4


@pytest.fixture
def walruses(member):
    """24 issues about walruses in MAIN and WEB (the member's) and SEC (not), with labels and creation times spread
    so that the newest ones differ by project, labels and words."""
    web, sec = ProjectFactory(key="WEB"), ProjectFactory(key="SEC")
    add_member(member, web, "member")
    projects = [default_project(), web, sec]
    labels = {p.pk: {name: LabelFactory(project=p, name=name) for name in ("bug", "ui")} for p in projects}
    label_sets = [[], ["bug"], ["ui"], ["bug", "ui"]]
    now = timezone.now()
    for i in range(24):
        project = projects[i % 3]
        IssueFactory(
            project=project,
            title=f"Walrus {i}" + (" tusks" if i % 2 else ""),
            description="ice floe" if i % 5 else "a tusk on the ice",
            status=Status.values[i % 4],
            labels=[labels[project.pk][name] for name in label_sets[(i // 3) % 4]],
            created_at=now - timedelta(hours=i),
        )
    return SimpleNamespace(oldest=now - timedelta(hours=23))


def listed(client, params: dict) -> tuple[list[list[int]], int, bool]:
    """Every page's ids (2 a page), the count, and whether the count was read from the documents alone."""
    pages, page = [], 1
    with CaptureQueriesContext(connection) as ctx:
        while True:
            response = client.get("/api/issues", {**params, "page_size": 2, "page": page})
            assert response.status_code == 200, response.content[:300]
            body = response.json()
            pages.append([row["id"] for row in body["results"]])
            if not body["next"]:
                break
            page += 1
    by_documents = any(COUNT_OF_DOCUMENTS.match(query["sql"]) for query in ctx.captured_queries)
    return pages, body["count"], by_documents


@pytest.mark.parametrize(
    "params",
    [
        {"q": "walrus"},
        {"q": "tusk"},
        {"q": '"ice floe" walrus'},
        {"q": "tusks OR floe"},
        {"q": "walrus -tusk"},
        {"q": "walrus label:bug"},
        {"q": "walrus label:BUG label:ui"},
        {"q": "walrus -label:ui"},
        {"q": "walrus label:bug -label:ui project:WEB"},
        {"q": "walrus -project:WEB"},
        {"q": "walrus created:>=2000-01-01"},
        {"q": "walrus", "label": "ui"},
        {"q": "walrus", "project": "MAIN", "created_before": "2100-01-01T00:00:00Z"},
        {"q": "walrus", "ordering": "created_at"},
        {"q": "walrus tusk", "ordering": "relevance"},
    ],
)
def test_a_word_search_answers_by_its_documents_what_it_answers_by_its_issues(walruses, member_client, params):
    pages, count, by_documents = listed(member_client, params)
    assert by_documents
    through_issues = {**params, "q": params["q"] + " " + EVERY_STATUS}
    assert listed(member_client, through_issues) == (pages, count, False)
    assert count == sum(map(len, pages)) > 0


def test_the_created_dates_of_a_word_search_are_the_issues(walruses, member_client):
    since = (walruses.oldest + timedelta(hours=12)).isoformat().replace("+00:00", "Z")
    pages, count, by_documents = listed(member_client, {"q": "walrus", "created_after": since})
    assert by_documents and count == 8  # the 12 newest, 2 in 3 of them visible
    assert listed(member_client, {"q": f"walrus {EVERY_STATUS}", "created_after": since}) == (pages, count, False)


def test_keyset_pages_of_a_word_search(walruses, member_client):
    def pages(q: str) -> list[list[int]]:
        found, url, params = [], "/api/issues", {"q": q, "pagination": "keyset", "page_size": 2}
        while url:
            body = member_client.get(url, params).json()
            found.append([row["id"] for row in body["results"]])
            url, params = body["next"], {}
        return found

    assert pages("walrus label:bug") == pages(f"walrus label:bug {EVERY_STATUS}")
    assert sum(map(len, pages("walrus label:bug"))) == 8


def test_the_documents_count_and_page_what_the_filtersets_queryset_holds(walruses, member):
    """The FilterSet returns the issues as any queryset; what it hands the paginator (``counted_by``) counts the
    same rows by their documents and picks the same first page."""
    query = QueryDict("q=walrus")
    request = SimpleNamespace(user=member, query_params=query)
    filterset = IssueFilterSet(data=query, queryset=selectors.issue_list(access_for(member)), request=request)
    issues = filterset.qs
    assert filterset.counted_by is not None
    assert filterset.counted_by.count() == issues.count() == 16
    assert filterset.counted_by.count_and_first(5) == (16, [i.pk for i in issues[:5]])
    assert issues.filter(status="closed").count() == 4  # a queryset like any other


def test_a_word_search_with_labels_runs_four_statements(walruses, member_client):
    """The token with its user and projects, the words' check (stop words, queue) with the search generations, the
    count with the first page's ids, the page. (In this test's transaction, which has written, nothing is kept:
    tests/issues/test_search_cache.py has a kept result save the count.)"""
    for q in ("tusk label:ui", "walrus label:bug -label:ui"):
        with CaptureQueriesContext(connection) as ctx:
            body = member_client.get("/api/issues", {"q": q, "page_size": 100}).json()
        assert body["count"] == len(body["results"]) > 0
        assert len(ctx.captured_queries) == 4
