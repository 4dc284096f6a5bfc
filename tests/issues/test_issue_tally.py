"""The unfiltered list's ``count`` on PostgreSQL comes from the tally the database triggers keep
(``IssueTally``): it must equal ``COUNT(*)`` after every kind of write, roll back with its transaction, and
stay exact under concurrent writers."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from issues import selectors, services
from issues.models import Issue, IssueTally
from tests.factories import IssueFactory, UserFactory

pytestmark = pytest.mark.postgres(reason="the tally's triggers are PostgreSQL's")


def tally() -> int:
    return sum(IssueTally.objects.values_list("issues", flat=True))


def listed_count(client, query: str = "") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/issues{query}")
    assert response.status_code == 200
    return response.json()["count"], [q["sql"] for q in queries.captured_queries]


def count_star(sql: list[str]) -> list[str]:
    return [q for q in sql if "COUNT(*)" in q and 'FROM "issues_issue"' in q]


@pytest.mark.django_db
def test_unfiltered_count_reads_the_tally_and_equals_count_star(maintainer, maintainer_client):
    IssueFactory.create_batch(3)
    for title in ("a", "b"):
        assert maintainer_client.post("/api/issues", {"title": title}, format="json").status_code == 201
    csv = "title,status\nimported one,open\nimported two,closed\n,open\n"
    response = maintainer_client.post("/api/issues/import", csv, content_type="text/csv")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    Issue.objects.filter(title="a").delete()  # as the admin deletes: Django's collector, a DELETE statement

    count, sql = listed_count(maintainer_client)
    assert count == Issue.objects.count() == tally() == 6
    assert not count_star(sql), sql
    assert any("issues_issuetally" in q for q in sql)

    # A filter counts with COUNT(*) over the matching rows.
    count, sql = listed_count(maintainer_client, "?status=closed")
    assert count == Issue.objects.filter(status="closed").count() == 1
    assert count_star(sql)
    assert not any("issues_issuetally" in q for q in sql)


@pytest.mark.django_db
def test_a_rolled_back_write_leaves_the_tally_alone(member):
    IssueFactory.create_batch(2)
    seen_inside = []

    def create_then_fail() -> None:
        with transaction.atomic():
            services.issue_create(actor=member, title="never")
            seen_inside.append(tally())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert seen_inside == [3]  # inside the transaction the new row is counted...
    assert tally() == Issue.objects.count() == 2  # ...and after the rollback it is not


@pytest.mark.django_db
def test_the_list_counts_with_the_tally_only_without_filters(member_client):
    IssueFactory.create_batch(2, status="open")
    IssueFactory(status="closed")
    assert selectors.issue_total() == 3
    for params, count, kept in (({}, 3, True), ({"status": "open"}, 2, False), ({"status": "resolved"}, 0, False)):
        with CaptureQueriesContext(connection) as queries:
            assert member_client.get("/api/issues", {**params, "page": 11}).status_code == 404 or count == 0
            body = member_client.get("/api/issues", params).json()
        assert body["count"] == count
        assert any("issues_issuetally" in query["sql"] for query in queries.captured_queries) == kept


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_creators_and_deleters_keep_it_exact():
    """8 threads, each on its own connection, create 25 issues one by one and delete every fifth."""
    user = UserFactory(role="member")
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                issue = services.issue_create(actor=user, title=f"t{i}-{n}")
                if n % 5 == 4:
                    Issue.objects.filter(pk=issue.pk).delete()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(threads)))
    assert Issue.objects.count() == threads * per_thread * 4 // 5 == 160
    assert tally() == 160
    assert IssueTally.objects.count() > 1  # the writers were spread over several slots
