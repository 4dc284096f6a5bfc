"""The whole list's pages (no filter, no ordering parameter): each page and its count are read
by one prepared statement (``selectors.issue_list_page``); every answer must equal the one the ORM's path
gives, which a filter parameter with an empty value (a no-op filter) takes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from issues import selectors
from issues.access import SYSTEM, access_for
from issues.models import Issue, Project, Visibility
from issues.pagination import PREPARED_PAGES
from tests.factories import IssueFactory, LabelFactory, UserFactory, default_project, make_issues

pytestmark = pytest.mark.django_db


def mixed_issues(n: int) -> None:
    """``n`` issues with none to three labels (bug, UI, api), some unassigned."""
    labels = [LabelFactory(name=name) for name in ("bug", "UI", "api")]
    users = [UserFactory() for _ in range(2)]
    make_issues(n, label_sets=[labels[:k] for k in range(4)], assignees=[None, *users])


def read_with_count(ctx: CaptureQueriesContext) -> bool:
    """Whether the page was read with its count (``issues_total``) by one statement."""
    return any("issues_total" in query["sql"] for query in ctx.captured_queries)


def both_paths(client, **params) -> tuple:
    """The whole list's answer, and the ORM path's answer to the same page (``status=`` filters nothing)."""
    with CaptureQueriesContext(connection) as whole_ctx:
        whole = client.get("/api/issues", params)
    with CaptureQueriesContext(connection) as orm_ctx:
        orm = client.get("/api/issues", {**params, "status": ""})
    assert not read_with_count(orm_ctx)
    page = str(params.get("page", 1))
    if whole.status_code == 200 and page.isdigit():
        assert read_with_count(whole_ctx) == (int(page) <= PREPARED_PAGES)
    return whole, orm


@pytest.mark.parametrize("page_size", [20, 7])
def test_every_page_equals_the_orm_path(member_client, page_size):
    mixed_issues(45)
    pages, rows = -(-45 // page_size), []
    for page in range(1, pages + 1):
        whole, orm = both_paths(member_client, page=page, page_size=page_size)
        assert whole.status_code == orm.status_code == 200
        assert whole.json()["count"] == orm.json()["count"] == 45
        assert type(whole.json()["count"]) is int
        assert whole.json()["results"] == orm.json()["results"]
        assert len(whole.json()["results"]) == min(page_size, 45 - (page - 1) * page_size)
        assert (whole.json()["next"] is None) == (page == pages)
        rows += whole.json()["results"]
    assert len({row["id"] for row in rows}) == 45
    # the oldest four, newest first: the label names joined in by the statement, ordered ignoring case
    assert [row["labels"] for row in rows[-4:]] == [["api", "bug", "UI"], ["bug", "UI"], ["bug"], []]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "4", "10", "11", str(2**63), "9" * 30, "9" * 4301])
def test_pages_that_do_not_exist_are_refused_alike(member_client, page):
    mixed_issues(45)
    whole, orm = both_paths(member_client, page=page)
    assert whole.status_code == orm.status_code == 404
    assert whole.json() == orm.json()


def test_the_last_page_and_an_empty_list(member_client):
    empty = member_client.get("/api/issues")
    assert empty.status_code == 200
    assert empty.json() == {"count": 0, "next": None, "previous": None, "results": []}
    mixed_issues(45)
    whole, orm = both_paths(member_client, page="last")
    assert whole.status_code == 200 and whole.json()["results"] == orm.json()["results"]
    assert len(whole.json()["results"]) == 5 and whole.json()["count"] == 45


def test_the_count_follows_creates_and_deletes(member_client):
    mixed_issues(3)
    assert member_client.get("/api/issues").json()["count"] == 3
    Issue.objects.filter(pk=Issue.objects.order_by("id").first().pk).delete()
    IssueFactory.create_batch(4)
    body = member_client.get("/api/issues").json()
    assert body["count"] == 6 == len(body["results"])


def test_the_whole_lists_page_is_read_with_its_count_in_one_statement():
    mixed_issues(5)
    newest_first = list(Issue.objects.order_by("-created_at", "-id").values_list("pk", flat=True))
    for access in (SYSTEM, access_for(UserFactory(role="viewer"))):  # staff's statement, and a caller's
        rows, count = selectors.issue_list_page(access, 0, 20)
        assert count == 5 and [issue.pk for issue in rows] == newest_first
        assert selectors.issue_list_page(access, 20, 40) is None  # an empty page carries no count
    # Once the project is private, a caller who is no member sees nothing: the same statement, no row.
    Project.objects.filter(pk=default_project().pk).update(visibility=Visibility.PRIVATE)
    assert selectors.issue_list_page(access_for(UserFactory(username="nobody")), 0, 20) is None


@pytest.mark.parametrize(
    "params", [{"status": "open"}, {"ordering": "id"}, {"ordering": "-created_at"}, {"label": "bug"}, {"q": "x"}]
)
def test_a_filter_or_an_ordering_parameter_takes_the_orm_path(member_client, params):
    mixed_issues(5)
    with CaptureQueriesContext(connection) as ctx:
        assert member_client.get("/api/issues", params).status_code == 200
    assert not read_with_count(ctx)
    counts_kept = any("issues_issuetally" in query["sql"] for query in ctx.captured_queries)
    assert counts_kept == (set(params) == {"ordering"})  # an ordering alone still counts every issue


def page_statements() -> dict[str, int]:
    """The whole list's prepared page statements on this connection, and how often each has run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%%issues_issuetally%%'"
        )
        return dict(cursor.fetchall())


def test_each_pages_statement_is_compiled_once_and_prepared_once(member_client):
    mixed_issues(30)
    for _ in range(3):
        assert member_client.get("/api/issues").status_code == 200
        assert member_client.get("/api/issues", {"page": 2}).status_code == 200
    before = page_statements()
    assert len(before) == 2  # page 1, and page 2 (its ids picked first)
    assert sum("OFFSET 20" in statement for statement in before) == 1
    member_client.get("/api/issues")
    member_client.get("/api/issues", {"page": 2})
    # The same two statements, word for word, each run once more: nothing new was compiled or prepared.
    assert page_statements() == {statement: runs + 1 for statement, runs in before.items()}


def test_pages_past_the_prepared_ones_are_counted_first(member_client):
    """Past PREPARED_PAGES the page number is checked against the count before the page is read (two
    statements after the token's), so a page number of any size never reaches the page statement."""
    IssueFactory.create_batch(PREPARED_PAGES + 1)
    for page, statements in ((PREPARED_PAGES, 1 + 1), (PREPARED_PAGES + 1, 1 + 2)):
        with CaptureQueriesContext(connection) as ctx:
            whole, orm = both_paths(member_client, page=page, page_size=1)
        assert whole.status_code == 200 and whole.json()["results"] == orm.json()["results"]
        assert len(ctx.captured_queries) == statements + 1 + 2  # the whole list's, then the ORM path's
