"""Word-search results kept by the web process (``issues.search_cache``): a repeated search is answered from the
kept count and first page, and every committed write that changes what it finds (create, PATCH of the text, labels,
a label renamed or deleted, the import, the indexer, the admin, a delete, TRUNCATE) is seen by the next request;
a rolled-back write and a write in a project the search does not look in keep the result. Transactional tests: a
transaction that has written keeps nothing, so the tests' usual transaction would never use the cache."""

import re
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import connection, connections, transaction
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from issues import search_cache, search_index, selectors
from issues.access import access_for
from issues.filters import IssueFilterSet
from issues.models import SEARCH_CONFIG, SEARCH_INLINE_ROWS, Issue, SearchGeneration
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, add_member, default_project
from tests.issues.test_search_documents import insert_raw

pytestmark = pytest.mark.django_db(transaction=True)
COUNTED = re.compile(r'SELECT COUNT\(\*\) AS "(__count|total)"[^;]*? FROM "issues_issuesearch"')
SEARCHES = ("walrus", "walrus label:bug")


@pytest.fixture(autouse=True)
def forgotten():
    search_cache.clear()
    yield
    search_cache.clear()


@pytest.fixture
def walruses(maintainer):
    """Issues about walruses in MAIN (the maintainer's), some labelled bug, and one in SEC, which it cannot see."""
    bug = LabelFactory(project=default_project(), name="bug")
    now = timezone.now()
    for i in range(6):
        IssueFactory(title=f"Walrus {i}", labels=[bug] if i % 2 else [], created_at=now - timedelta(hours=i))
    IssueFactory(title="Seal 0", created_at=now - timedelta(hours=7))
    IssueFactory(project=ProjectFactory(key="SEC"), title="Walrus elsewhere")
    return bug


def searched(client: APIClient, q: str) -> tuple[dict, bool, int]:
    """The list's answer, whether it counted (read the documents) rather than used a kept result, and how many
    statements it ran."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/issues", {"q": q, "page_size": 3})
    assert response.status_code == 200, response.content[:300]
    counted = any(COUNTED.match(query["sql"]) for query in ctx.captured_queries)
    return response.json(), counted, len(ctx.captured_queries)


def truth(user, q: str) -> tuple[int, list[int]]:
    """The count and the first page (3, newest first) of ``q`` for ``user``, read from the issue table."""
    ids = every(user, q)
    return len(ids), ids[:3]


def every(user, q: str) -> list[int]:
    """The issues ``q`` finds for ``user``, newest first, read from the issue table (labels by name)."""
    words, _, label = q.partition(" label:")
    issues = search_index.issues_matching(
        selectors.issue_list(access_for(user)), SearchQuery(words, config=SEARCH_CONFIG, search_type="websearch")
    )
    if label:
        issues = issues.filter(labels__name=label)
    return list(issues.order_by("-created_at", "-id").values_list("pk", flat=True))


def assert_exact(client: APIClient, user) -> list[tuple[int, list[int]]]:
    answers = []
    for q in SEARCHES:
        body, _, _ = searched(client, q)
        answer = (body["count"], [row["id"] for row in body["results"]])
        assert answer == truth(user, q), q
        answers.append(answer)
    return answers


def test_a_repeated_search_is_answered_from_the_kept_result(walruses, maintainer_client, maintainer):
    first, counted, statements = searched(maintainer_client, "walrus")
    assert counted and statements == 4  # token, words with the generations, count with the first page's ids, page
    again, counted, statements = searched(maintainer_client, "walrus")
    assert again == first and first["count"] == 6
    assert not counted and statements == 3
    # Another page size, another project list, other words: other results.
    assert searched(maintainer_client, "walrus -label:bug")[1]
    # The second page: the kept count, the page read by the ORM.
    for _ in range(2):
        page_two = maintainer_client.get("/api/issues", {"q": "walrus", "page_size": 3, "page": 2}).json()
        assert page_two["count"] == 6
        assert [row["id"] for row in page_two["results"]] == every(maintainer, "walrus")[3:6]


def test_each_process_state_is_checked_against_the_database(walruses, maintainer_client):
    """The kept state is the sum of the searched projects' generations and the tables' file nodes; in a transaction
    that has written there is no state (nothing kept, nothing used)."""
    projects = [default_project().pk]
    state = state_of(projects)
    total = sum(SearchGeneration.objects.filter(project_id__in=projects).values_list("generation", flat=True))
    assert state is not None and state[:2] == (tuple(projects), total) and total > 0
    with transaction.atomic():
        assert state_of(projects) == state  # a transaction that has only read
        IssueFactory(title="Walrus inside")
        assert state_of(projects) is None
        body, counted, _ = searched(maintainer_client, "walrus")
        assert counted and body["count"] == 7
        body, counted, _ = searched(maintainer_client, "walrus")
        assert counted and body["count"] == 7  # read again: nothing was kept
        transaction.set_rollback(True)
    assert state_of(projects) == state  # rolled back: the generations too


def state_of(projects: list[int]) -> object:
    """The search generations' state, as a search's words' check reads it."""
    return search_cache.word_state("walrus", projects)[2]


def edit_title(client, issue: Issue, title: str) -> None:
    response = client.patch(f"/api/issues/{issue.pk}", {"title": title, "version": issue.version}, format="json")
    assert response.status_code == 200, response.content


def admin_edit(client, staff, issue: Issue) -> None:
    client = APIClient()
    client.force_login(staff)
    form = {
        "title": "Renamed by the admin", "description": "", "status": issue.status, "priority": issue.priority,
        "assignee": "", "labels": [], "seen_version": issue.version, "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0", "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = client.post(f"/admin/issues/issue/{issue.pk}/change/", form)
    assert response.status_code == 302, response.content[:500]


def newest_walrus() -> Issue:
    return Issue.objects.filter(title__startswith="Walrus", project=default_project()).order_by("-created_at")[0]


WRITES = {
    "create": lambda c, bug, staff: c.post("/api/issues", {"title": "Walrus news", "labels": ["bug"]}, format="json"),
    "title_off": lambda c, bug, staff: edit_title(c, newest_walrus(), "A seal"),
    "title_on": lambda c, bug, staff: edit_title(c, Issue.objects.get(title="Seal 0"), "Walrus 9"),
    "description": lambda c, bug, staff: c.patch(
        f"/api/issues/{Issue.objects.get(title='Seal 0').pk}", {"description": "walrus", "version": 1}, format="json"
    ),
    "labels": lambda c, bug, staff: c.put(f"/api/issues/{newest_walrus().pk}/labels", ["bug"], format="json"),
    "label_rename": lambda c, bug, staff: c.patch(f"/api/labels/{bug.pk}", {"name": "defect"}, format="json"),
    "label_delete": lambda c, bug, staff: c.delete(f"/api/labels/{bug.pk}"),
    "import": lambda c, bug, staff: c.generic(
        "POST", "/api/issues/import", b"title,labels\nWalrus imported,bug\n", content_type="text/csv"
    ),
    "indexer": lambda c, bug, staff: (insert_raw(SEARCH_INLINE_ROWS + 1, "walrus"), search_index.index_pending()),
    "admin": lambda c, bug, staff: admin_edit(c, staff, newest_walrus()),
    "delete": lambda c, bug, staff: newest_walrus().delete(),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_write_that_changes_a_search_is_seen_by_the_next_request(
    walruses, maintainer_client, maintainer, staff, write
):
    before = assert_exact(maintainer_client, maintainer)
    assert all(not searched(maintainer_client, q)[1] for q in SEARCHES)  # kept
    response = WRITES[write](maintainer_client, walruses, staff)
    assert getattr(response, "status_code", 200) < 300, response.content
    after = assert_exact(maintainer_client, maintainer)  # read again, and right
    assert after != before  # (the write changed what one of them finds)


def test_a_rolled_back_write_and_another_projects_keep_the_result(walruses, maintainer_client, maintainer):
    assert_exact(maintainer_client, maintainer)
    with transaction.atomic():
        IssueFactory(title="Walrus that never was", labels=[walruses])
        transaction.set_rollback(True)
    assert not Issue.objects.filter(title="Walrus that never was").exists()
    IssueFactory(project=Issue.objects.get(title="Walrus elsewhere").project, title="Walrus of SEC")
    for q in SEARCHES:
        assert not searched(maintainer_client, q)[1]
    assert_exact(maintainer_client, maintainer)
    # Made a member of SEC, the maintainer searches other projects: another result, read afresh.
    add_member(maintainer, Issue.objects.get(title="Walrus elsewhere").project, "member")
    body, counted, _ = searched(maintainer_client, "walrus")
    assert counted and body["count"] == 8


def test_a_link_changed_by_sql_is_seen(walruses, maintainer_client, maintainer):
    """No service updates a link in place, but a script may (a label merge): both labels' projects move."""
    ui = LabelFactory(project=default_project(), name="ui")
    newest_walrus().labels.add(ui)
    before = assert_exact(maintainer_client, maintainer)
    assert not searched(maintainer_client, "walrus label:bug")[1]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE issues_issue_labels SET label_id = %s WHERE label_id = %s", [walruses.pk, ui.pk])
    assert assert_exact(maintainer_client, maintainer) != before


def test_nothing_is_kept_or_used_inside_an_atomic_block(walruses, maintainer_client, maintainer):
    """Code that checks a search's words, then writes, then counts, in one transaction: the words' check read the
    state before the write, so the count (which sees the write) would be kept under a state that outlives the
    rollback, and the kept result of before would be used for a count that must see the write."""
    assert searched(maintainer_client, "walrus")[0]["count"] == 6
    query = QueryDict("q=walrus")
    request = SimpleNamespace(user=maintainer, query_params=query)
    with transaction.atomic():
        issues = selectors.issue_list(access_for(maintainer))
        filterset = IssueFilterSet(data=query, queryset=issues, request=request)
        assert filterset.qs is not None and filterset.counted_by is not None  # the words' check: nothing written
        IssueFactory(title="Walrus never committed")
        assert filterset.counted_by.count_and_first(3)[0] == 7
        transaction.set_rollback(True)
    body, counted, _ = searched(maintainer_client, "walrus")
    assert body["count"] == 6 and not counted  # the result of before, still right


def bump(project_id: int, times: int) -> None:
    """Move a project's search generation ``times`` statements on, as the triggers do."""
    with connection.cursor() as cursor:
        for _ in range(times):
            cursor.execute("SELECT issues_search_bump(ARRAY[%s]::bigint[])", [project_id])


def total(project_id: int) -> int:
    return sum(SearchGeneration.objects.filter(project_id=project_id).values_list("generation", flat=True))


def test_callers_who_see_other_projects_do_not_share_a_state(
    walruses, maintainer, maintainer_client, member, member_client
):
    """The maintainer sees MAIN and X, the member MAIN and Y; both search MAIN alone (the same SQL). With X one
    generation ahead of Y, one write to MAIN makes the member's sum over (MAIN, Y) what the maintainer's over
    (MAIN, X) was: a state that did not name its projects would hand the member the maintainer's old result."""
    x, y = ProjectFactory(key="XX"), ProjectFactory(key="YY")
    add_member(maintainer, x, "member")
    add_member(member, y, "member")
    assert total(x.pk) == total(y.pk) == 0
    bump(x.pk, 1)
    first, counted, _ = searched(maintainer_client, "walrus project:MAIN")
    assert counted and first["count"] == 6
    IssueFactory(title="Walrus in MAIN")  # one statement: MAIN's generation moves by one
    body, counted, _ = searched(member_client, "walrus project:MAIN")
    assert counted and body["count"] == 7


def test_truncate_is_seen(walruses, maintainer_client, maintainer):
    """TRUNCATE fires no row trigger and bumps nothing; the tables' new file nodes tell the kept results."""
    assert_exact(maintainer_client, maintainer)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE issues_issuesearch")
    body, counted, _ = searched(maintainer_client, "walrus")
    assert counted and body["count"] == 0


def test_concurrent_writers_never_let_a_reader_see_an_old_count(walruses, maintainer, maintainer_client):
    """Four threads, each on its own connection, create matching issues while a reader searches in a loop: every
    count the reader gets lies between what had committed when its request began and what had begun to be written
    when it ended."""
    committed, begun = [6], [6]  # issues committed; issues whose write has begun (committed or not yet)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                with lock:
                    begun[0] += 1
                IssueFactory(title=f"Walrus from writer {n}.{i}")
                with lock:
                    committed[0] += 1
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    seen, kept = [], 0
    while any(thread.is_alive() for thread in writers) or not seen:
        with lock:
            low = committed[0]
        body, counted, _ = searched(maintainer_client, "walrus")
        kept += not counted
        with lock:
            high = begun[0]
        assert low <= body["count"] <= high
        seen.append(body["count"])
    for thread in writers:
        thread.join()
    assert not errors
    body, counted, _ = searched(maintainer_client, "walrus")
    assert body["count"] == 66 == truth(maintainer, "walrus")[0]
    assert not searched(maintainer_client, "walrus")[1]  # and kept once the writes stopped
    assert len(set(seen)) > 2  # the reader saw the writes land


def test_the_cache_can_be_turned_off(walruses, maintainer_client, settings):
    settings.SEARCH_CACHE_ENTRIES = 0
    searched(maintainer_client, "walrus")
    assert searched(maintainer_client, "walrus")[1]


def test_the_kept_results_are_bounded(walruses, maintainer_client, settings):
    settings.SEARCH_CACHE_ENTRIES = 2
    for q in ("walrus", "walrus -label:bug", "walrus label:bug"):
        searched(maintainer_client, q)
    assert searched(maintainer_client, "walrus")[1]  # the oldest was dropped
    assert not searched(maintainer_client, "walrus label:bug")[1]
