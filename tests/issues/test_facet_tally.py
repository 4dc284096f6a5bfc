"""The facet tallies: the number of issues per (project, status, priority, assignee) (``IssueFacetTally``) and per
(project, status, priority) (``IssueStatusTally``) that the database triggers keep, from which a list filtered by
those four counts its matches (``selectors.issue_facet_total``). Both must equal ``COUNT(*)`` per combination after
every write path (API, bulk, import, admin, user deletion, rollback, TRUNCATE) and under concurrent writers, whose
transactions never wait for each other on them; and the list's ``count`` read from them must be the real one."""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.test.utils import CaptureQueriesContext

from issues import selectors, services
from issues.access import SYSTEM, Access, access_for
from issues.csv_io import importer
from issues.models import Issue, IssueFacetTally, IssueStatusTally, Priority, Status
from issues.search import Facets
from issues.services.bulk import BulkItem
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member, default_project
from tests.helpers import csv_text, make_client, post_csv, released_together

Combination = tuple[int, str, str, int]  # project, status, priority, assignee (0: unassigned)


def kept() -> dict[Combination, int]:
    """What the tally says, summed over its slots, per combination that has issues."""
    rows = IssueFacetTally.objects.values_list("project_id", "status", "priority", "assignee_id").annotate(
        n=Sum("issues")
    )
    return {(p, s, pr, a): n for p, s, pr, a, n in rows if n}


def counted() -> dict[Combination, int]:
    """``COUNT(*)`` of the issues per combination."""
    rows = (
        Issue.objects.annotate(who=Coalesce("assignee_id", 0))
        .values_list("project_id", "status", "priority", "who")
        .annotate(n=Count("*"))
    )
    return {(p, s, pr, a): n for p, s, pr, a, n in rows}


def kept_without_assignee() -> dict[tuple[int, str, str], int]:
    """What ``IssueStatusTally`` says, summed over its slots, per (project, status, priority) that has issues."""
    rows = IssueStatusTally.objects.values_list("project_id", "status", "priority").annotate(n=Sum("issues"))
    return {(p, s, pr): n for p, s, pr, n in rows if n}


def assert_exact() -> dict[Combination, int]:
    """Both tallies equal ``COUNT(*)``: per combination, and per combination without the assignee."""
    now = counted()
    assert kept() == now
    without_assignee: dict[tuple[int, str, str], int] = {}
    for (project, status, priority, _), n in now.items():
        without_assignee[project, status, priority] = without_assignee.get((project, status, priority), 0) + n
    assert kept_without_assignee() == without_assignee
    return now


def tally_rows() -> list[tuple]:
    """Every row version of both tallies (``xmin``: the transaction that wrote it, a savepoint's own in a test's
    transaction): unchanged by a write that moves no count, which must not even rewrite a row with a delta of 0."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'by assignee', id, xmin::text, slot, issues FROM issues_issuefacettally"
            " UNION ALL SELECT 'without', id, xmin::text, slot, issues FROM issues_issuestatustally ORDER BY 1, 2"
        )
        return cursor.fetchall()


def advisory_locks() -> int:
    """The advisory locks this connection holds on the facet tallies' slots (a write of text also takes one of the
    search generations': migration 0021)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) IN ("
            "  SELECT hashtextextended('issues_issuefacettally:' || p.id || ':' || s, 0)"
            "  FROM issues_project p, generate_series(0, 63) AS s)"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def small_batches(monkeypatch):
    """Several import batches (savepoints) per file."""
    monkeypatch.setattr(importer, "IMPORT_BATCH_SIZE", 3)


@pytest.fixture
def refuse_boom_titles(db):
    """A real database failure in the middle of an import batch: a trigger refusing issues titled 'boom'."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN IF NEW.title = 'boom' THEN"
            " RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON issues_issue FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
        )


@pytest.mark.django_db
def test_api_writes_keep_every_combination_exact(maintainer, maintainer_client, member):
    web = ProjectFactory(key="WEB")
    add_member(maintainer, web, "maintainer")
    assert_exact()
    created = []
    for body in (
        {"title": "a"},
        {"title": "b", "status": "in_progress", "priority": "high", "assignee": member.pk},
        {"title": "c", "project": "WEB", "priority": "critical", "assignee": maintainer.pk},
        {"title": "d", "project": "WEB", "status": "closed", "labels": ["bug"]},
    ):
        response = maintainer_client.post("/api/issues", body, format="json")
        assert response.status_code == 201, response.content
        created.append(response.json()["id"])
        assert_exact()
    assert sum(kept().values()) == 4

    def patch(issue_id: int, **changes) -> None:
        version = Issue.objects.get(pk=issue_id).version
        response = maintainer_client.patch(f"/api/issues/{issue_id}", {**changes, "version": version}, format="json")
        assert response.status_code == 200, response.content

    first, second, third, _ = created
    for issue_id, changes in (
        (first, {"status": "resolved"}),
        (first, {"priority": "low"}),
        (first, {"assignee": member.pk}),
        (second, {"assignee": None}),
        (third, {"status": "open", "priority": "medium", "assignee": None}),
    ):
        patch(issue_id, **changes)
        assert_exact()
    assert counted()[(default_project().pk, "resolved", "low", member.pk)] == 1

    # Moving no count (title, description, labels) writes nothing to the tallies: the same rows, the same slots.
    before = tally_rows()
    patch(first, title="renamed", description="more")
    response = maintainer_client.put(f"/api/issues/{first}/labels", ["ui", "bug"], format="json")
    assert response.status_code == 200, response.content
    assert tally_rows() == before
    assert_exact()

    response = maintainer_client.post(
        "/api/issues/bulk-status", {"ids": [first, second, third], "status": "closed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["updated"] == 3
    assert_exact()


@pytest.mark.django_db(transaction=True)
def test_a_write_that_moves_no_count_takes_no_slot(member):
    """A PATCH of the title takes no slot (no advisory lock), so that a concurrent writer of the project keeps slot
    0; a status change takes one, for both tallies, and so does every statement of that transaction after it."""
    issue, other = IssueFactory(status="open"), IssueFactory(status="open")
    with transaction.atomic():
        services.issue_update(issue_id=issue.pk, actor=member, expected_version=None, changes={"title": "renamed"})
        assert advisory_locks() == 0
        services.issue_update(issue_id=issue.pk, actor=member, expected_version=None, changes={"status": "closed"})
        assert advisory_locks() == 1
        services.issue_update(issue_id=other.pk, actor=member, expected_version=None, changes={"priority": "low"})
        assert advisory_locks() == 1  # the same slot of the same project
    assert advisory_locks() == 0
    assert IssueFacetTally.objects.values("slot").distinct().count() == 1
    assert assert_exact() == {
        (default_project().pk, "closed", "medium", 0): 1,
        (default_project().pk, "open", "low", 0): 1,
    }


@pytest.mark.django_db
def test_imports_keep_it_exact_with_failed_rows_refused_batches_and_dry_runs(
    maintainer_client, member, refuse_boom_titles, small_batches
):
    IssueFactory(status="open")
    rows = [[f"Row {i}", "", ["open", "closed"][i % 2], ["low", "high"][i % 2], str(member.pk), ""] for i in range(10)]
    rows[2] = ["Bad status", "", "sleeping", "", "", ""]  # a row error at validation
    rows[4] = ["boom", "", "open", "low", "", ""]  # refused by the database: its batch is retried row by row
    rows[7] = ["Unknown assignee", "", "", "", "no-such-user", ""]
    before = tally_rows()
    dry = post_csv(maintainer_client, csv_text(rows), "?dry_run=true")
    assert dry.status_code == 200, dry.content
    assert tally_rows() == before  # a dry run writes nothing

    response = post_csv(maintainer_client, csv_text(rows))
    assert response.status_code == 200, response.content
    assert (response.json()["created"], response.json()["failed"]) == (7, 3)
    now = assert_exact()
    assert sum(now.values()) == 8
    assert now[(default_project().pk, "closed", "high", member.pk)] == 4


def admin_form(issue: Issue, **changes) -> dict:
    return {
        "title": issue.title,
        "description": issue.description,
        "status": issue.status,
        "priority": issue.priority,
        "assignee": issue.assignee_id or "",
        "labels": [label.pk for label in issue.labels.all()],
        "seen_version": issue.version,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
        **changes,
    }


@pytest.mark.django_db
def test_the_admin_add_edit_and_deletes_keep_it_exact(client, staff, member):
    client.force_login(staff)
    issues = [IssueFactory(priority=priority) for priority in ("low", "high", "high", "critical")]
    add = admin_form(issues[0], title="From admin", status="in_progress", assignee=member.pk)
    add.update(project=default_project().pk, labels=[LabelFactory().pk])
    del add["seen_version"]
    assert client.post("/admin/issues/issue/add/", add).status_code == 302
    assert_exact()

    form = admin_form(issues[0], status="closed", priority="critical", assignee=member.pk)
    response = client.post(f"/admin/issues/issue/{issues[0].pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    assert_exact()

    response = client.post(f"/admin/issues/issue/{issues[1].pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert_exact()
    selected = {"action": "delete_selected", "_selected_action": [issues[2].pk, issues[3].pk], "post": "yes"}
    assert client.post("/admin/issues/issue/", selected).status_code == 302
    assert not Issue.objects.filter(pk__in=[issue.pk for issue in issues[1:]]).exists()
    assert assert_exact() == {
        (default_project().pk, "closed", "critical", member.pk): 1,
        (default_project().pk, "in_progress", "low", member.pk): 1,
    }


@pytest.mark.django_db
def test_deleting_a_user_moves_their_issues_to_unassigned(member):
    gone = UserFactory(username="gone", role="member")
    IssueFactory.create_batch(3, assignee=gone, status="in_progress")
    IssueFactory(assignee=member, status="in_progress")
    project = default_project().pk
    assert assert_exact()[(project, "in_progress", "medium", gone.pk)] == 3
    gone.delete()  # the assignee's foreign key is SET NULL: one UPDATE of the three issues
    assert assert_exact() == {
        (project, "in_progress", "medium", 0): 3,
        (project, "in_progress", "medium", member.pk): 1,
    }


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_it_as_it_was(member):
    issue = IssueFactory(status="open")
    before = assert_exact()
    inside = []

    def write_then_fail() -> None:
        with transaction.atomic():
            services.issue_create(actor=member, project=default_project(), title="never", priority="high")
            changes = {"status": "closed"}
            services.issue_update(issue_id=issue.pk, actor=member, expected_version=None, changes=changes)
            IssueFactory(priority="low", title="deleted")
            Issue.objects.filter(title="deleted").delete()
            inside.append(assert_exact())
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    project = default_project().pk
    # counted inside the transaction...
    assert inside == [{(project, "open", "high", 0): 1, (project, "closed", "medium", 0): 1}]
    assert assert_exact() == before == {(project, "open", "medium", 0): 1}  # ...and not after the rollback


@pytest.mark.django_db
def test_truncate_empties_it_and_counting_starts_again():
    IssueFactory.create_batch(3)
    assert sum(assert_exact().values()) == 3
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses a table with pending foreign-key checks
        cursor.execute("TRUNCATE issues_issue CASCADE")
    assert kept() == kept_without_assignee() == counted() == {}
    IssueFactory(status="resolved")
    assert assert_exact() == {(default_project().pk, "resolved", "medium", 0): 1}


# --- the count it gives --------------------------------------------------------------------------------------


@pytest.fixture
def spread(member):
    """Issues of every status, priority and some assignees in the default project (internal), in WEB (the member's
    own) and in SECRET (not the member's); returns (member's assignee, other user, web, secret)."""
    other = UserFactory(username="other", role="member")
    web, secret = ProjectFactory(key="WEB"), ProjectFactory(key="SECRET")
    add_member(member, web, "member")
    add_member(other, web, "member")
    assignees = [None, member, other]
    n = 0
    for project in (default_project(), web, secret):
        for status in Status.values:
            for priority in Priority.values:
                for k in range(1 + n % 3):
                    IssueFactory(project=project, status=status, priority=priority, assignee=assignees[(n + k) % 3])
                n += 1
    return member, other, web, secret


def assigned_to(users: list[int | None]) -> Q:
    """Assigned to any of ``users`` (None: unassigned)."""
    condition = Q(assignee_id__in=[user for user in users if user is not None])
    return condition | Q(assignee__isnull=True) if None in users else condition


def matching(access: Access, facets: Facets) -> int:
    """``COUNT(*)`` of the visible issues ``facets`` describes."""
    issues = selectors.scope(Issue.objects.all(), access)
    if facets.project_ids is not None:
        issues = issues.filter(project_id__in=facets.project_ids)
    if facets.statuses is not None:
        issues = issues.filter(status__in=facets.statuses)
    if facets.priorities is not None:
        issues = issues.filter(priority__in=facets.priorities)
    if facets.assignees is not None:
        issues = issues.filter(assigned_to(facets.assignees))
    if facets.assignees_excluded:
        issues = issues.exclude(assigned_to(facets.assignees_excluded))
    return issues.count()


@pytest.mark.django_db
def test_issue_facet_total_equals_count_star_scoped_to_the_callers_projects(spread):
    member, other, web, secret = spread
    main = default_project().pk
    # Which tallies the one statement reads: without an assignee filter the one without assignees (a few rows per
    # project whatever the number of users), with one the rows of those assignees, with exclusions only both.
    without, by_assignee, both = {STATUS_TALLY}, {FACET_TALLY}, {STATUS_TALLY, FACET_TALLY}
    cases = [
        (Facets(), without),
        (Facets(statuses=["open"]), without),
        (Facets(statuses=["open", "in_progress"], priorities=["high", "critical"]), without),
        (Facets(project_ids=[web.pk], priorities=["low"]), without),
        (Facets(project_ids=[web.pk, secret.pk], statuses=["closed"]), without),  # SECRET: never the member's
        (Facets(project_ids=[secret.pk]), without),
        (Facets(assignees=[None]), by_assignee),
        (Facets(assignees=[member.pk, None], statuses=["resolved"]), by_assignee),
        (Facets(assignees=[other.pk], project_ids=[main, web.pk]), by_assignee),
        (Facets(assignees_excluded=[None]), both),
        (Facets(assignees_excluded=[member.pk, None], priorities=["medium"]), both),
        (Facets(assignees_excluded=[other.pk], statuses=["open"], project_ids=[web.pk]), both),
        (Facets(assignees=[member.pk, other.pk], assignees_excluded=[other.pk]), by_assignee),
    ]
    for access in (access_for(member), SYSTEM):
        for facets, tallies in cases:
            with CaptureQueriesContext(connection) as ctx:
                total = selectors.issue_facet_total(access, facets)
            assert total == matching(access, facets), facets
            assert len(ctx.captured_queries) == 1
            assert tallies_read(ctx.captured_queries[0]["sql"]) == tallies, facets
    # Every assignee excluded, or the only one asked for excluded: nothing, without a query.
    with CaptureQueriesContext(connection) as ctx:
        assert selectors.issue_facet_total(SYSTEM, Facets(assignees=[other.pk], assignees_excluded=[other.pk])) == 0
    assert not ctx.captured_queries
    assert selectors.issue_facet_total(access_for(member), Facets(project_ids=[secret.pk])) == 0
    assert selectors.issue_facet_total(SYSTEM, Facets(project_ids=[secret.pk])) == secret.issues.count() > 0
    # A dimension that allows nothing is 0 without asking the database.
    for facets in (Facets(statuses=[]), Facets(project_ids=[]), Facets(priorities=[]), Facets(assignees=[])):
        with CaptureQueriesContext(connection) as ctx:
            assert selectors.issue_facet_total(SYSTEM, facets) == 0
        assert not ctx.captured_queries


STATUS_TALLY, FACET_TALLY = '"issues_issuestatustally"', '"issues_issuefacettally"'


def tallies_read(sql: str) -> set[str]:
    return {table for table in (STATUS_TALLY, FACET_TALLY) if f"FROM {table}" in sql}


def list_count(client, params: dict) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/issues", params)
    assert response.status_code == 200, response.content
    return response.json()["count"], [query["sql"] for query in ctx.captured_queries]


def counts_with_the_tally(sql: list[str]) -> bool:
    """The count was summed from the facet tallies, and no ``COUNT(*)`` ran over the issues."""
    return any(tallies_read(q) for q in sql) and not any("COUNT(*)" in q and 'FROM "issues_issue"' in q for q in sql)


@pytest.mark.django_db
def test_the_lists_count_of_facet_filters_is_read_from_the_tally_and_is_exact(spread):
    member, other, web, _ = spread
    client = make_client(member)
    visible = Issue.objects.filter(project_id__in=[default_project().pk, web.pk])
    cases = [
        ({"status": "open"}, visible.filter(status="open")),
        ({"status": "open,in_progress"}, visible.filter(status__in=["open", "in_progress"])),
        ({"status": "open", "assignee": member.pk}, visible.filter(status="open", assignee=member)),
        ({"priority": "high", "project": "WEB"}, visible.filter(priority="high", project=web)),
        ({"assignee": "none"}, visible.filter(assignee=None)),
        (
            {"assignee": other.pk, "priority": "low,critical"},
            visible.filter(assignee=other, priority__in=["low", "critical"]),
        ),
        ({"status": "closed", "project": "WEB", "ordering": "-priority"}, visible.filter(status="closed", project=web)),
        ({"status": "open", "page": 2, "page_size": 2}, visible.filter(status="open")),
    ]
    for params, expected in cases:
        count, sql = list_count(client, params)
        assert count == expected.count() > 0, params
        assert counts_with_the_tally(sql), (params, sql)
    # Any other filter counts with COUNT(*), as before.
    for params in ({"status": "open", "label": "bug"}, {"reporter": member.pk}, {"status": "open", "q": "Issue"}):
        count, sql = list_count(client, params)
        assert not any(tallies_read(q) for q in sql), params


@pytest.mark.django_db
def test_q_qualifiers_are_counted_from_the_tally_too(spread):
    member, other, web, _ = spread
    client = make_client(member)
    visible = Issue.objects.filter(project_id__in=[default_project().pk, web.pk])
    cases = [
        ({"q": "status:open"}, visible.filter(status="open")),
        ({"q": "status:open,closed priority:high"}, visible.filter(status__in=["open", "closed"], priority="high")),
        ({"q": "-status:closed project:WEB"}, visible.exclude(status="closed").filter(project=web)),
        ({"q": "assignee:none"}, visible.filter(assignee=None)),
        ({"q": "assignee:me -priority:low"}, visible.filter(assignee=member).exclude(priority="low")),
        ({"q": f"-assignee:{other.username}"}, visible.exclude(assignee=other)),
        ({"status": "open", "q": "assignee:none"}, visible.filter(status="open", assignee=None)),
        ({"status": "open", "q": "status:closed"}, visible.none()),
        ({"q": "project:SECRET"}, None),  # not the member's: a 400, as the project parameter answers
    ]
    for params, expected in cases:
        if expected is None:
            assert client.get("/api/issues", params).status_code == 400
            continue
        count, sql = list_count(client, params)
        assert count == expected.count(), params
        assert counts_with_the_tally(sql) or count == 0, (params, sql)


# --- concurrent writers ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_patches_and_bulks_keep_it_exact():
    """8 threads, each on its own connection, create issues, PATCH their status, priority and assignee, and change
    statuses in bulk, all in the same two projects at once; the tally then equals COUNT(*) per combination."""
    boss = UserFactory(username="boss", role="maintainer")
    helper = UserFactory(username="helper", role="member")
    projects = [default_project(), ProjectFactory(key="TWO")]
    for project in projects[1:]:
        add_member(boss, project, "maintainer")
        add_member(helper, project, "member")
    seeded = [IssueFactory(project=projects[i % 2]).pk for i in range(40)]  # what the bulks change
    threads, rounds = 8, 12
    statuses, priorities = Status.values, Priority.values

    def work(i: int) -> None:
        access = access_for(boss)
        for n in range(rounds):
            issue = services.issue_create(
                actor=boss, project=projects[(i + n) % 2], title=f"t{i}-{n}", priority=priorities[n % 4]
            )
            changes = {"status": statuses[(i + n) % 4], "assignee": [None, helper, boss][n % 3]}
            if n % 2:
                changes["priority"] = priorities[(n + 1) % 4]
            services.issue_update(issue_id=issue.pk, actor=boss, expected_version=None, changes=changes)
            chosen = sorted({seeded[(i * 5 + n + k) % len(seeded)] for k in range(6)})
            items = [BulkItem(index=k, id=pk, status=statuses[(i + n + k) % 4]) for k, pk in enumerate(chosen)]
            services.issue_bulk_set_status(actor=boss, items=items, access=access)
            if n % 5 == 4:
                Issue.objects.filter(pk=issue.pk).delete()

    released_together(threads, work)
    now = assert_exact()
    assert sum(now.values()) == 40 + threads * (rounds - rounds // 5)
    assert IssueFacetTally.objects.values("slot").distinct().count() > 1  # the writers used several slots
    assert IssueStatusTally.objects.values("slot").distinct().count() > 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_open_transaction_does_not_block_another_writer_of_the_same_project():
    """One transaction changes an issue's status and stays open; another changes another issue of the same project
    from and to the same (status, priority, assignee), which would update the same tally row but for the slots:
    it completes while the first is still open (a lock wait would fail on ``lock_timeout``)."""
    user = UserFactory(username="writer", role="member")
    first, second = IssueFactory(status="open"), IssueFactory(status="open")
    holding, released = threading.Event(), threading.Event()
    finished_while_held = []

    def hold() -> None:
        with transaction.atomic():
            services.issue_update(issue_id=first.pk, actor=user, expected_version=None, changes={"status": "closed"})
            holding.set()
            assert released.wait(timeout=60)

    def write() -> None:
        assert holding.wait(timeout=60)
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '10s'")
                services.issue_update(
                    issue_id=second.pk, actor=user, expected_version=None, changes={"status": "closed"}
                )
            finished_while_held.append(not released.is_set())
        finally:
            released.set()

    released_together(2, lambda i: (hold, write)[i]())
    assert finished_while_held == [True]
    closed = IssueFacetTally.objects.filter(status="closed", priority="medium", assignee_id=0)
    assert sorted(closed.values_list("issues", flat=True)) == [1, 1]  # one row per slot
    closed_without = IssueStatusTally.objects.filter(status="closed", priority="medium")
    assert sorted(closed_without.values_list("issues", flat=True)) == [1, 1]  # and in the other tally
    assert assert_exact() == {(default_project().pk, "closed", "medium", 0): 2}
