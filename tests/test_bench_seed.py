"""``python -m bench.seed``, the benchmarks' set-based loader, writes data with the same invariants as
``manage.py seed_demo`` (``check_seed_invariants``), in one transaction and with ``--jobs 3``, in the default
project alone (``--projects 1``, the default) or spread over several, numbered per project."""

import contextlib
import io
import threading

import pytest
from django.db import DataError, connection
from django.db.backends.signals import connection_created

from bench import seed
from issues.access import access_for, default_project_key
from issues.management import demo_text
from issues.models import (
    SEARCH_DOCUMENT_SQL,
    Issue,
    IssueEvent,
    IssueSearch,
    IssueSearchPending,
    Membership,
    Project,
    Visibility,
)
from issues.selectors import issue_total
from issues.services import issue_create
from tests.factories import UserFactory, add_member, default_project
from tests.test_seed_demo import check_seed_invariants

N_USERS = 20


def table_indexes() -> set[str]:
    tables = [IssueEvent._meta.db_table, "issues_issue", "issues_comment", "issues_issue_labels", "issues_issuesearch"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture(autouse=True)
def numbers_from_one(django_db_setup, django_db_blocker):
    """Every project's numbers start at 1, as in a fresh database: sequences are outside transactions, so an
    earlier test's issues moved them (no issue is left at the start of a test: that is safe)."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(format('issues_project_%s_number_seq', id)::regclass, 1, false) FROM issues_project"
        )


def check_documents(n_issues: int) -> None:
    """Every issue has its search document, as the insert trigger would have written it, and none is left queued."""
    assert not IssueSearchPending.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM issues_issue AS search_new_rows JOIN issues_issuesearch s"
            f" ON s.issue_id = search_new_rows.id WHERE s.document = {SEARCH_DOCUMENT_SQL}"
        )
        assert cursor.fetchone()[0] == n_issues == IssueSearch.objects.count()


def numbers_by_project() -> dict[str, list[int]]:
    """Each project's issue numbers, in id order."""
    found: dict[str, list[int]] = {}
    for key, number in Issue.objects.order_by("id").values_list("project__key", "number"):
        found.setdefault(key, []).append(number)
    return found


def create_after(project: Project, title: str) -> Issue:
    issue = issue_create(actor=None, project=project, title=title)
    issue.refresh_from_db()
    return issue


def test_one_transaction_keeps_every_invariant(db):
    counts = seed.load(400, N_USERS)
    assert (counts["issues"], counts["projects"]) == (400, 1)
    check_seed_invariants(400, N_USERS, projects=1)
    check_documents(400)
    assert numbers_by_project() == {default_project_key(): list(range(1, 401))}  # the default: one project
    after = create_after(default_project(), "After the seed")
    assert (after.pk, after.number) == (401, 401)  # both sequences moved past the seed's


def test_loading_again_appends_and_reset_starts_over(db):
    seed.load(300, N_USERS)
    seed.load(50, N_USERS, seed=2)
    check_seed_invariants(350, N_USERS, in_id_order=False)
    assert numbers_by_project() == {default_project_key(): list(range(1, 351))}  # the numbers go on
    seed.load(300, N_USERS, reset=True)
    check_seed_invariants(300, N_USERS)
    check_documents(300)
    assert numbers_by_project() == {default_project_key(): list(range(1, 301))}  # and start again at 1
    after = create_after(default_project(), "After the reset")
    assert (after.pk, after.number) == (301, 301)


def test_projects_spread_the_issues_numbered_per_project(db):
    """--projects 5: the default project and four of seed_demo's, private here, each numbered 1..n in id order;
    a second load goes on from each project's number, and the next issue created takes the one after."""
    counts = seed.load(400, N_USERS, projects=5)
    assert (counts["issues"], counts["projects"]) == (400, 5)
    check_seed_invariants(400, N_USERS, projects=5)
    numbers = numbers_by_project()
    assert len(numbers) == 5 and all(found == list(range(1, len(found) + 1)) for found in numbers.values())
    projects = Project.objects.filter(key__in=numbers)
    assert {p.key: p.visibility for p in projects if p.visibility == Visibility.INTERNAL} == {
        default_project_key(): Visibility.INTERNAL
    }  # the default project only: the others are private
    sizes = {key: len(found) for key, found in numbers.items()}
    assert max(sizes, key=sizes.__getitem__) == default_project_key() and min(sizes.values()) > 20  # skewed, all used

    seed.load(100, N_USERS, projects=5, seed=2)
    check_seed_invariants(500, N_USERS, in_id_order=False, projects=5)
    again = numbers_by_project()
    assert all(found == list(range(1, len(found) + 1)) for found in again.values())
    assert all(again[key][: len(found)] == found for key, found in numbers.items())  # the first load's kept theirs
    for project in projects:
        after = create_after(project, f"After the seed in {project.key}")
        assert after.number == len(again[project.key]) + 1, project.key


def test_a_member_of_some_projects_sees_those_and_the_default_one(db):
    """The benchmark's caller: a member of 5 of 20 projects sees exactly those 5 (the default one among them), and
    the unfiltered list's count (the per-project tally) is the number of their issues."""
    seed.load(600, N_USERS, projects=20)
    projects = list(Project.objects.order_by("id"))
    assert len(projects) == 20 and projects[0].key == default_project_key()
    caller = UserFactory(username="bench-member")
    for project in projects[:5]:
        add_member(caller, project, "maintainer")
    access = access_for(caller)
    assert access.visible_ids == sorted(p.pk for p in projects[:5])
    visible = Issue.objects.filter(project__in=projects[:5]).count()
    assert 0 < visible < 600
    assert issue_total(access) == visible
    assert Membership.objects.filter(user=caller).count() == 5


def test_the_text_is_demo_texts_from_hashed_draws(db):
    """The loader's titles and descriptions are demo_text's grammar in SQL: fed the same numbers (the issue's
    ``pg_temp.t(id, k)``), demo_text's Python writes exactly the loader's text, for every issue of a load."""
    seed.load(300, N_USERS, seed=3)
    with connection.cursor() as cursor:  # the load's functions stay in this session (its pg_temp)
        cursor.execute(
            "SELECT id, title, description, ARRAY(SELECT pg_temp.t(id, k) FROM generate_series(0, %s) AS k)"
            " FROM issues_issue ORDER BY id",
            [demo_text.DRAWS - 1],
        )
        rows = cursor.fetchall()
    assert len(rows) == 300
    for pk, title, description, draws in rows:
        assert title == f"{demo_text.title(draws.__getitem__)} (#{pk})"
        assert description == demo_text.description(draws.__getitem__)
    assert len({description for _, _, description, _ in rows}) > 250  # varied, not a few fixed strings


@contextlib.contextmanager
def connections_of_other_threads():
    """Counts the database connections opened meanwhile by threads other than this one."""
    main, opened = threading.get_ident(), []

    def count(sender, connection, **kwargs):
        if threading.get_ident() != main:
            opened.append(connection)

    connection_created.connect(count, weak=False)
    try:
        yield opened
    finally:
        connection_created.disconnect(count)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("jobs", "projects"), [(1, 1), (3, 1), (1, 4), (3, 4)])
def test_big_load_rebuilds_the_indexes_and_keeps_every_invariant(monkeypatch, jobs, projects):
    """The big-load path on a small load: secondary indexes dropped and rebuilt, foreign-key triggers skipped
    (replica mode: the number, tally and label-link triggers fire all the same); with --jobs 3 the issues first,
    then labels, events and comments from three connections."""
    before = table_indexes()
    monkeypatch.setattr(seed, "BIG_LOAD", 100)
    out = io.StringIO()
    argv = ["--issues", "300", "--users", str(N_USERS), "--projects", str(projects), "--jobs", str(jobs)]
    with contextlib.redirect_stdout(out), connections_of_other_threads() as opened:
        seed.main([*argv, "--verbose"])
    assert "DROP INDEX" in out.getvalue() and "CREATE INDEX" in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("Seeded 300 issues, ")
    if jobs == 3:  # labels, events and comments from three more connections (then each index rebuilt in one)
        assert len(opened) >= 3, opened
    else:  # all in this thread's transaction
        assert opened == []
    assert len(before) >= 11 and "issue_search_document_gin" in before
    assert table_indexes() == before  # every secondary index is back
    check_seed_invariants(300, N_USERS, projects=projects)
    check_documents(300)
    numbers = numbers_by_project()
    assert len(numbers) == projects and all(found == list(range(1, len(found) + 1)) for found in numbers.values())
    after = create_after(default_project(), "After the big load")
    assert (after.pk, after.number) == (301, len(numbers[default_project_key()]) + 1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failed_parallel_load_is_undone(monkeypatch):
    """--jobs 3: when one of the three connections fails, the issues go again and the indexes come back."""
    seed.load(50, N_USERS)
    before = table_indexes()
    monkeypatch.setattr(seed, "BIG_LOAD", 100)
    monkeypatch.setattr(seed, "COMMENTS_SQL", "SELECT 1 / (%(n)s - %(n)s)")
    with pytest.raises(DataError, match="division by zero"):
        seed.load(300, N_USERS, jobs=3)
    assert table_indexes() == before
    check_seed_invariants(50, N_USERS)
    check_documents(50)


def test_refuses_bad_sizes():
    with pytest.raises(SystemExit):
        seed.main(["--issues", "-1", "--users", "5"])
    with pytest.raises(SystemExit):
        seed.main(["--issues", "1", "--users", "5", "--projects", "0"])
    with pytest.raises(ValueError, match="issues must be"):
        seed.load(10, 0)
    with pytest.raises(ValueError, match="projects >= 1"):
        seed.load(10, 5, projects=0)
