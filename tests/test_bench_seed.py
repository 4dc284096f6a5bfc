"""``python -m bench.seed``, the benchmarks' set-based loader, writes data with the same invariants as
``manage.py seed_demo`` (``check_seed_invariants``), in one transaction and with ``--jobs 3``."""

import contextlib
import io
import threading

import pytest
from django.db import DataError, connection
from django.db.backends.signals import connection_created

from bench import seed
from issues.models import IssueEvent
from issues.services import issue_create
from tests.factories import ensure_role_groups
from tests.test_seed_demo import check_seed_invariants

N_USERS = 20


def table_indexes() -> set[str]:
    tables = [IssueEvent._meta.db_table, "issues_issue", "issues_comment", "issues_issue_labels"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def groups(db):
    ensure_role_groups()  # a transactional test before this one may have flushed them


def test_one_transaction_keeps_every_invariant(groups):
    counts = seed.load(400, N_USERS)
    assert counts["issues"] == 400
    check_seed_invariants(400, N_USERS)
    assert issue_create(actor=None, title="After the seed").pk == 401  # the sequence moved past the ids


def test_loading_again_appends_and_reset_starts_over(groups):
    seed.load(300, N_USERS)
    seed.load(50, N_USERS, seed=2)
    check_seed_invariants(350, N_USERS, in_id_order=False)
    seed.load(300, N_USERS, reset=True)
    check_seed_invariants(300, N_USERS)
    assert issue_create(actor=None, title="After the reset").pk == 301


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
@pytest.mark.parametrize("jobs", [1, 3])
def test_big_load_rebuilds_the_indexes_and_keeps_every_invariant(monkeypatch, jobs):
    """The big-load path on a small load: secondary indexes dropped and rebuilt, foreign-key triggers skipped
    (replica mode); with --jobs 3 the issues first, then labels, events and comments from three connections."""
    ensure_role_groups()
    before = table_indexes()
    monkeypatch.setattr(seed, "BIG_LOAD", 100)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), connections_of_other_threads() as opened:
        seed.main(["--issues", "300", "--users", str(N_USERS), "--jobs", str(jobs), "--verbose"])
    assert "DROP INDEX" in out.getvalue() and "CREATE INDEX" in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("Seeded 300 issues, ")
    if jobs == 3:  # labels, events and comments from three more connections (then each index rebuilt in one)
        assert len(opened) >= 3, opened
    else:  # all in this thread's transaction
        assert opened == []
    assert len(before) >= 10
    assert table_indexes() == before  # every secondary index is back
    check_seed_invariants(300, N_USERS)
    assert issue_create(actor=None, title="After the big load").pk == 301


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failed_parallel_load_is_undone(monkeypatch):
    """--jobs 3: when one of the three connections fails, the issues go again and the indexes come back."""
    ensure_role_groups()
    seed.load(50, N_USERS)
    before = table_indexes()
    monkeypatch.setattr(seed, "BIG_LOAD", 100)
    monkeypatch.setattr(seed, "COMMENTS_SQL", "SELECT 1 / (%(n)s - %(n)s)")
    with pytest.raises(DataError, match="division by zero"):
        seed.load(300, N_USERS, jobs=3)
    assert table_indexes() == before
    check_seed_invariants(50, N_USERS)


def test_refuses_bad_sizes():
    with pytest.raises(SystemExit):
        seed.main(["--issues", "-1", "--users", "5"])
    with pytest.raises(ValueError, match="issues must be"):
        seed.load(10, 0)
