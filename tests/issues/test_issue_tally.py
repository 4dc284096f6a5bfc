"""The unfiltered list's ``count`` comes from the tally the database triggers keep per project
(``IssueTally``): it must equal ``COUNT(*)`` after every kind of write, roll back with its transaction, and
stay exact under concurrent writers."""

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from issues import selectors, services
from issues.access import SYSTEM
from issues.models import Issue, IssueTally
from tests.factories import IssueFactory, ProjectFactory, UserFactory, default_project
from tests.helpers import released_together


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

    # A filter that the facet tally cannot count (a date) counts with COUNT(*) over the matching rows...
    count, sql = listed_count(maintainer_client, "?status=closed&created_after=2000-01-01T00:00:00Z")
    assert count == Issue.objects.filter(status="closed").count() == 1
    assert count_star(sql)
    assert not any("issues_issuetally" in q for q in sql)
    # ...one of project, status, priority and assignee sums the facet tallies' rows (test_facet_tally.py).
    count, sql = listed_count(maintainer_client, "?status=closed")
    assert count == 1 and not count_star(sql)
    assert any("issues_issuestatustally" in q for q in sql)


@pytest.mark.django_db
def test_a_rolled_back_write_leaves_the_tally_alone(member):
    IssueFactory.create_batch(2)
    seen_inside = []

    def create_then_fail() -> None:
        with transaction.atomic():
            services.issue_create(actor=member, project=default_project(), title="never")
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
    assert selectors.issue_total(SYSTEM) == 3
    for params, count, kept in (({}, 3, True), ({"status": "open"}, 2, False), ({"status": "resolved"}, 0, False)):
        with CaptureQueriesContext(connection) as queries:
            assert member_client.get("/api/issues", {**params, "page": 11}).status_code == 404 or count == 0
            body = member_client.get("/api/issues", params).json()
        assert body["count"] == count
        assert any("issues_issuetally" in query["sql"] for query in queries.captured_queries) == kept


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_creators_and_deleters_keep_it_exact():
    """8 threads, each on its own connection, create 25 issues one by one (in two projects) and delete every
    fifth."""
    user = UserFactory(role="member")
    projects = [default_project(), ProjectFactory(key="TWO")]
    threads, per_thread = 8, 25

    def work(i: int) -> None:
        for n in range(per_thread):
            issue = services.issue_create(actor=user, project=projects[i % 2], title=f"t{i}-{n}")
            if n % 5 == 4:
                Issue.objects.filter(pk=issue.pk).delete()

    released_together(threads, work)
    assert Issue.objects.count() == threads * per_thread * 4 // 5 == 160
    assert tally() == 160
    for project in projects:
        kept = IssueTally.objects.filter(project=project).values_list("issues", flat=True)
        assert sum(kept) == Issue.objects.filter(project=project).count() == 80
    assert IssueTally.objects.count() > 2  # the writers were spread over several slots


# The triggers are declared on ``Issue`` (``Meta.triggers``, django-pgtrigger); migration 0009 replaced 0007's
# hand-written ones by them and made them ENABLE ALWAYS.
HAND_WRITTEN = {"issues_tally_insert", "issues_tally_delete", "issues_tally_truncate"}


def issue_triggers() -> dict[str, str]:
    """The issue table's own triggers (not the foreign keys' internal ones): name -> pg_trigger.tgenabled."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [Issue._meta.db_table],
        )
        return dict(cursor.fetchall())


def per_project() -> dict[int, int]:
    kept: dict[int, int] = {}
    for project_id, issues in IssueTally.objects.values_list("project_id", "issues"):
        kept[project_id] = kept.get(project_id, 0) + issues
    return {project_id: issues for project_id, issues in kept.items() if issues}


def counted() -> dict[int, int]:
    return {row["project_id"]: row["n"] for row in Issue.objects.values("project_id").annotate(n=Count("*"))}


def is_superuser() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        return cursor.fetchone()[0]


def write_in_replica_mode(inserted: int, *, with_project: bool = True) -> None:
    """As bench/seed.py writes: one INSERT ... SELECT and one DELETE under session_replication_role = replica (the
    numbers given by the insert trigger, ENABLE ALWAYS too)."""
    columns = "title, description, status, priority, version, created_at, updated_at"
    values = "'replica ' || g, '', 'open', 'low', 1, now(), now()"
    if with_project:
        columns, values = f"project_id, {columns}", f"{default_project().pk}, {values}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"INSERT INTO issues_issue ({columns}) SELECT {values} FROM generate_series(1, %s) AS g", [inserted + 1]
        )
        cursor.execute("DELETE FROM issues_issue WHERE title = 'replica 1'")
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.mark.django_db
def test_the_declared_triggers_are_installed_and_enable_always():
    pgids = {trigger.get_pgid(Issue): trigger for trigger in Issue._meta.triggers}
    # the tally's three, the number's default, the frozen project and number, the facet tally's four (0014), the
    # search document's two (0014)
    assert len(pgids) == 11
    # ENABLE ALWAYS ('A'): they fire also under session_replication_role = replica. pgtrigger creates plain ENABLE
    # ('O'), so a migration that recreates one of them without 0009's ALTER fails here.
    assert issue_triggers() == dict.fromkeys(pgids, "A")
    assert not HAND_WRITTEN & set(issue_triggers())
    for trigger in pgids.values():  # the database's triggers are the model's (pgtrigger compares their hashes)
        assert trigger.get_installation_status(Issue)[0] == "INSTALLED"

    if not is_superuser():
        pytest.skip("session_replication_role = replica needs a superuser")
    IssueFactory.create_batch(2)
    write_in_replica_mode(5)
    assert tally() == Issue.objects.count() == 7
    numbers = sorted(Issue.objects.values_list("number", flat=True))
    first = numbers[0]  # (sequences do not roll back: earlier tests took numbers)
    # the trigger numbered the replica rows after the factory's two; "replica 1" was deleted
    assert numbers == [first, first + 1, *range(first + 3, first + 8)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses a table with pending foreign-key checks
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("TRUNCATE issues_issue CASCADE")
        assert tally() == Issue.objects.count() == 0
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_migrating_from_0008_keeps_the_count_exact():
    """Back to 0008 (0009's backward SQL recreates 0007's triggers), write issues there, migrate forward through
    0009 (pgtrigger's triggers) and 0010 (projects: the tally is rebuilt per project): the count stays exact, and
    the new triggers keep it exact."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([("issues", "0008_idempotency")])
    try:
        assert issue_triggers() == dict.fromkeys(HAND_WRITTEN, "A")
        if is_superuser():
            write_in_replica_mode(12, with_project=False)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO issues_issue (title, description, status, priority, version, created_at, updated_at) "
                "SELECT 'old ' || g, '', 'open', 'low', 1, now(), now() FROM generate_series(1, 9) AS g"
            )
            cursor.execute("DELETE FROM issues_issue WHERE title IN ('old 1', 'old 2')")
            cursor.execute(
                "SELECT COALESCE(SUM(issues), 0), (SELECT count(*) FROM issues_issue) FROM issues_issuetally"
            )
            kept, rows = cursor.fetchone()
        assert kept == rows > 0

        executor = MigrationExecutor(connection)  # a fresh loader: the one above still holds the old state
        executor.migrate(latest)
        assert per_project() == counted() == {default_project().pk: rows}
        assert issue_triggers() == dict.fromkeys((t.get_pgid(Issue) for t in Issue._meta.triggers), "A")

        IssueFactory.create_batch(3)
        IssueFactory.create_batch(2, project=ProjectFactory(key="OTHER"))
        Issue.objects.filter(pk=Issue.objects.order_by("pk").first().pk).delete()
        if is_superuser():
            write_in_replica_mode(2)
        assert per_project() == counted()
        assert tally() == Issue.objects.count() == rows + 3 + 2 - 1 + (2 if is_superuser() else 0)
    finally:
        MigrationExecutor(connection).migrate(latest)  # nothing to do unless the test failed half-way
