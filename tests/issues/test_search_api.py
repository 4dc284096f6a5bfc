"""``q`` on the issue list and the export (docs/search.md): full-text words (stemmed, phrases, exclusion, OR), each
qualifier with its negation and comma list, dates, project scoping, ranking, pagination, and bad queries answered
with a 400 naming ``q``."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from issues.models import Issue
from tests.factories import IssueFactory, LabelFactory, ProjectFactory, UserFactory, add_member
from tests.helpers import assert_json_error, make_client, streamed_csv_rows

DAY = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def world(db, member):
    """For ``member`` (MAIN and WEB; SEC is private to others): five issues it sees and one it does not."""
    web = ProjectFactory(key="WEB")
    add_member(member, web, "member")
    sec = ProjectFactory(key="SEC")
    alice, bob = UserFactory(username="alice"), UserFactory(username="Bob")
    bug, ui, web_bug = LabelFactory(name="bug"), LabelFactory(name="UI"), LabelFactory(project=web, name="Bug")
    first = LabelFactory(project=web, name="good first issue")
    w = SimpleNamespace(member=member, alice=alice, bob=bob, web=web, sec=sec)
    w.login = IssueFactory(
        title="Login fails on Safari",
        description="Open the login form and submit it.",
        priority="high",
        assignee=alice,
        reporter=member,
        labels=[bug],
        created_at=DAY + timedelta(hours=10),
        updated_at=DAY + timedelta(days=3),
    )
    w.crash = IssueFactory(
        title="Crash at launch",
        description="The app keeps failing when the login screen opens.",
        status="in_progress",
        priority="critical",
        assignee=bob,
        reporter=alice,
        labels=[bug, ui],
        created_at=DAY - timedelta(microseconds=1),  # the last instant of the day before
        updated_at=DAY,
    )
    w.docs = IssueFactory(
        title="Update the docs",
        description="A typo in the guide.",
        status="resolved",
        priority="low",
        labels=[ui],
        created_at=DAY + timedelta(days=1),  # the first instant of the day after
        updated_at=DAY + timedelta(days=1),
        resolved_at=DAY + timedelta(days=2),
    )
    w.checkout = IssueFactory(
        project=web,
        title="Checkout button misaligned",
        description="Seen on Safari only.",
        status="closed",
        assignee=member,
        reporter=alice,
        labels=[web_bug, first],
        created_at=DAY + timedelta(days=5),
        updated_at=DAY + timedelta(days=6),
        resolved_at=DAY + timedelta(days=6),
    )
    w.zebra = IssueFactory(project=sec, title="Zebrafish fails", description="Safari", created_at=DAY)
    w.all = {w.login.pk, w.crash.pk, w.docs.pk, w.checkout.pk}
    return w


def listed(client, **params):
    """The ids the list answers for ``params`` (all on one page), newest first, and its count."""
    response = client.get("/api/issues", {"page_size": 100, **params})
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["count"] == len(body["results"])
    return [row["id"] for row in body["results"]]


def found(client, q, **params):
    return set(listed(client, q=q, **params))


def q_error(client, q, path="/api/issues"):
    """The messages of the 400 that ``q`` gets (it names ``q`` and nothing else)."""
    body = assert_json_error(client.get(path, {"q": q}), 400)
    assert list(body) == ["q"], body
    return body["q"]


# --- words ------------------------------------------------------------------------------------------------------


def test_words_are_stemmed_and_all_must_match(world, member_client):
    w = world
    assert found(member_client, "fails") == {w.login.pk, w.crash.pk}  # "failing" in the crash's description
    assert found(member_client, "failing") == found(member_client, "FAIL") == {w.login.pk, w.crash.pk}
    assert found(member_client, "login fails") == {w.login.pk, w.crash.pk}  # title or description, either
    assert found(member_client, "fails safari") == {w.login.pk}
    assert found(member_client, "submitted forms") == {w.login.pk}
    assert found(member_client, "nowhere") == set()


def test_phrases(world, member_client):
    assert found(member_client, '"login form"') == {world.login.pk}
    assert found(member_client, '"form login"') == set()  # the words, in this order
    assert found(member_client, '"login screen opens"') == {world.crash.pk}
    assert found(member_client, '"login screen') == {world.crash.pk}  # an open quote runs to the end


def test_exclusion_and_or(world, member_client):
    w = world
    assert found(member_client, "login -crash") == {w.login.pk}
    assert found(member_client, 'fails -"login form"') == {w.crash.pk}
    assert found(member_client, "typo OR misaligned") == {w.docs.pk, w.checkout.pk}
    assert found(member_client, "typo OR misaligned OR launch") == {w.docs.pk, w.checkout.pk, w.crash.pk}
    assert found(member_client, "typo misaligned") == set()
    assert found(member_client, "-safari") == {w.crash.pk, w.docs.pk}


def test_stop_words_alone_are_ignored(world, member_client):
    """``the`` makes no text-search query at all: the word part is ignored (as in a longer query: ``the login`` is
    ``login``), rather than matching nothing."""
    assert listed(member_client, q="the") == listed(member_client, q="the a of !") == listed(member_client)
    assert found(member_client, "the login") == found(member_client, "login")
    assert found(member_client, "the status:open") == {world.login.pk}


def test_a_word_only_in_an_invisible_project_finds_nothing(world, member_client, staff_client):
    assert found(member_client, "zebrafish") == set()
    body = member_client.get("/api/issues", {"q": "zebrafish"}).json()
    assert (body["count"], body["results"]) == (0, [])
    assert found(member_client, "safari") == {world.login.pk, world.checkout.pk}  # not SEC's
    assert found(staff_client, "zebrafish") == {world.zebra.pk}


def test_a_changed_title_is_searched(world, member_client):
    """The search documents follow the issues' text (the table's triggers), through the API's PATCH too."""
    response = member_client.patch(f"/api/issues/{world.docs.pk}", {"title": "Rewrite the handbook", "version": 1})
    assert response.status_code == 200, response.content
    assert found(member_client, "handbook") == {world.docs.pk}
    assert found(member_client, "docs") == set()


# --- qualifiers ---------------------------------------------------------------------------------------------------


def test_status_and_priority(world, member_client):
    w = world
    assert found(member_client, "status:open") == {w.login.pk}
    assert found(member_client, "status:open,in_progress") == {w.login.pk, w.crash.pk}
    assert found(member_client, "status:open status:in_progress") == {w.login.pk, w.crash.pk}  # repeated: any of
    assert found(member_client, "-status:open") == w.all - {w.login.pk}
    assert found(member_client, "-status:open,closed") == {w.crash.pk, w.docs.pk}
    assert found(member_client, "Status:OPEN") == {w.login.pk}
    assert found(member_client, "priority:high,critical") == {w.login.pk, w.crash.pk}
    assert found(member_client, "-priority:medium") == {w.login.pk, w.crash.pk, w.docs.pk}
    assert found(member_client, "priority:low priority:medium -priority:medium") == {w.docs.pk}


def test_project(world, member_client):
    w = world
    assert found(member_client, "project:WEB") == {w.checkout.pk}
    assert found(member_client, "project:web,main") == w.all
    assert found(member_client, "-project:web") == w.all - {w.checkout.pk}
    assert found(member_client, "project:MAIN -project:main") == set()
    # A project the caller cannot see is an unknown one: the same 400 as ?project= gives, naming the key only.
    for key in ("SEC", "NOPE", "sec"):
        assert q_error(member_client, f"project:{key}") == [f"Unknown project '{key.upper()}'."]
        assert q_error(member_client, f"-project:{key}") == [f"Unknown project '{key.upper()}'."]
        param = member_client.get("/api/issues", {"project": key}).json()
        assert param == {"project": [f"Unknown project '{key.upper()}'."]}


def test_assignee(world, member_client):
    w = world
    assert found(member_client, "assignee:alice") == {w.login.pk}
    assert found(member_client, f"assignee:{w.alice.pk}") == {w.login.pk}
    assert found(member_client, "assignee:alice,Bob") == {w.login.pk, w.crash.pk}
    assert found(member_client, "assignee:bob") == {w.crash.pk}  # "Bob": no exact match, so ignoring case
    assert found(member_client, "assignee:me") == {w.checkout.pk}
    assert found(member_client, "assignee:none") == {w.docs.pk}
    assert found(member_client, "assignee:none,me") == {w.docs.pk, w.checkout.pk}
    assert found(member_client, "-assignee:none") == w.all - {w.docs.pk}
    assert found(member_client, "-assignee:alice") == w.all - {w.login.pk}  # unassigned issues included
    assert found(member_client, "-assignee:alice,none -assignee:me") == {w.crash.pk}
    assert found(member_client, "assignee:alice,bob -assignee:bob") == {w.login.pk}
    assert q_error(member_client, "assignee:nobody") == ["Unknown user 'nobody'."]
    assert q_error(member_client, "-assignee:nobody") == ["Unknown user 'nobody'."]
    assert q_error(member_client, f"assignee:{2**63}") == [f"Unknown user '{2**63}'."]
    assert found(member_client, f"assignee:{2**63 - 1}") == set()  # an id, as ?assignee= takes it


def test_reporter(world, member_client):
    w = world
    assert found(member_client, "reporter:me") == {w.login.pk}
    assert found(member_client, "reporter:alice") == {w.crash.pk, w.checkout.pk}
    assert found(member_client, f"reporter:alice,{w.member.pk}") == {w.login.pk, w.crash.pk, w.checkout.pk}
    assert found(member_client, "-reporter:alice") == {w.login.pk, w.docs.pk}
    assert q_error(member_client, "reporter:none") == ["'reporter:' takes a username, a user id or 'me'."]


def test_labels_must_all_match(world, member_client):
    w = world
    assert found(member_client, "label:bug") == {w.login.pk, w.crash.pk, w.checkout.pk}  # MAIN's bug and WEB's Bug
    assert found(member_client, "label:bug label:ui") == {w.crash.pk}
    assert found(member_client, "label:bug,UI") == {w.crash.pk}  # a comma list too: each must match
    assert found(member_client, 'label:"good first issue"') == {w.checkout.pk}
    assert found(member_client, 'label:"Good First Issue",bug') == {w.checkout.pk}
    assert found(member_client, "-label:bug") == {w.docs.pk}
    assert found(member_client, "-label:bug,ui") == set()
    assert found(member_client, "label:ui -label:bug") == {w.docs.pk}
    assert found(member_client, "label:nosuchlabel") == set()  # as ?label= answers: no label, no issue


def test_dates(world, member_client):
    w = world
    assert found(member_client, "created:2026-01-05") == {w.login.pk}  # the whole UTC day, not its neighbours
    assert found(member_client, "created:>2026-01-05") == {w.docs.pk, w.checkout.pk}  # after that day
    assert found(member_client, "created:>=2026-01-05") == {w.login.pk, w.docs.pk, w.checkout.pk}
    assert found(member_client, "created:<2026-01-05") == {w.crash.pk}
    assert found(member_client, "created:<=2026-01-05") == {w.login.pk, w.crash.pk}
    assert found(member_client, "created:2026-01-04..2026-01-06") == {w.crash.pk, w.login.pk, w.docs.pk}
    assert found(member_client, "created:2026-01-06..*") == {w.docs.pk, w.checkout.pk}
    assert found(member_client, "-created:2026-01-05") == w.all - {w.login.pk}
    # Date-times are instants (no offset: UTC).
    assert found(member_client, "created:>=2026-01-05T10:00:00Z") == {w.login.pk, w.docs.pk, w.checkout.pk}
    assert found(member_client, "created:>2026-01-05T10:00:00Z") == {w.docs.pk, w.checkout.pk}
    assert found(member_client, "created:2026-01-05T12:00:00+02:00") == {w.login.pk}
    assert found(member_client, "created:<2026-01-05T00:00") == {w.crash.pk}
    assert found(member_client, "updated:>=2026-01-08 created:<2026-01-06") == {w.login.pk}  # each applies
    # resolved: issues never resolved are in no range, and outside every one.
    assert found(member_client, "resolved:2026-01-07") == {w.docs.pk}
    assert found(member_client, "resolved:>=2026-01-01") == {w.docs.pk, w.checkout.pk}
    assert found(member_client, "-resolved:2026-01-07") == w.all - {w.docs.pk}


def test_q_ands_with_the_other_parameters(world, member_client):
    w = world
    assert found(member_client, "fails", status="open") == {w.login.pk}
    assert found(member_client, "status:open,in_progress", status="in_progress,closed") == {w.crash.pk}
    assert found(member_client, "status:closed", status="open") == set()
    assert found(member_client, "assignee:alice", assignee="none") == set()
    assert found(member_client, "-assignee:alice", assignee=w.alice.pk) == set()
    assert found(member_client, "label:ui", label="bug") == {w.crash.pk}
    assert found(member_client, "project:MAIN", project="WEB") == set()
    assert found(member_client, "-project:main", project="WEB,MAIN") == {w.checkout.pk}
    assert found(member_client, "created:<2026-01-06", created_after="2026-01-05T00:00:00Z") == {w.login.pk}
    # The parameters keep their own checks.
    body = assert_json_error(member_client.get("/api/issues", {"q": "fails", "project": "SEC"}), 400)
    assert body == {"project": ["Unknown project 'SEC'."]}


# --- bad and huge queries ------------------------------------------------------------------------------------------


def test_unknown_qualifier_and_bad_values_are_a_400_naming_q(world, member_client):
    assert member_client.get("/api/issues", {"q": "foo:bar"}).json() == {"q": ["Unknown qualifier 'foo'."]}
    assert q_error(member_client, "login -label:x is:open") == ["Unknown qualifier 'is'."]
    assert q_error(member_client, "status:bogus")[0].startswith("Unknown status 'bogus'.")
    assert q_error(member_client, "created:soon")[0].startswith("'created:' takes a date")
    assert q_error(member_client, "label:bug OR label:ui")[0].startswith("'OR' must stand between two words")
    assert q_error(member_client, "foo:bar", path="/api/issues/export") == ["Unknown qualifier 'foo'."]


@pytest.mark.parametrize("q", ["a\x00b", "status:\x00", 'label:"\x00"', "\x00"])
def test_nul_bytes_are_a_400(world, member_client, q):
    assert q_error(member_client, q) == ["Null characters are not allowed."]


@pytest.mark.parametrize(
    "q",
    [
        "x" * 10_240,  # 10 KB
        "login " * 2_000,
        " ".join(f"w{i}" for i in range(1_000)),  # 1,000 terms
        ",".join(["label:bug"] * 1_000),
        "status:" + ",".join(["open"] * 1_000),
        '"' * 10_000,
        "(" * 5_000 + ")" * 5_000,
    ],
)
def test_huge_queries_are_a_400(world, member_client, q):
    (message,) = q_error(member_client, q)
    assert message.startswith("Ensure this value has at most 1000 characters"), message
    assert q_error(member_client, q, path="/api/issues/export") == [message]


def test_the_most_a_query_may_hold_answers(world, member_client):
    """50 terms in 1,000 characters (the caps): words, a hyphenated word, a phrase, every kind of qualifier; answered
    (a slow statement would meet the database's statement timeout, a JSON 503: never a 5xx page or a hang)."""
    parts = [f"-word{i}x" if i % 2 else f"safari{i}" for i in range(18)]  # 18 terms
    parts += ["safari-login", '"login form"']  # 2 + 2
    parts += ["status:open,closed", "assignee:me,none", "label:bug", "created:2026-01-01..*", "-updated:<2020-01-01"]
    parts += [f"-label:l{i}" for i in range(50 - 18 - 4 - 7)]
    q = " ".join(parts)
    assert len(q) <= 1_000
    assert member_client.get("/api/issues", {"q": q}).status_code == 200
    assert q_error(member_client, q + " one") == ["A search has at most 50 terms (words and qualifier values)."]


# --- ranking and pagination ---------------------------------------------------------------------------------------


def test_relevance_ranks_the_title_first(world, member_client):
    in_description = IssueFactory(title="Unrelated", description="A word about rendering here.")
    in_title = IssueFactory(title="Rendering glitch", description="Nothing else.")
    twice = IssueFactory(title="Rendering twice", description="Rendering again.")
    older_tie = IssueFactory(title="Also unrelated", description="A word about rendering here.")
    Issue.objects.filter(pk=older_tie.pk).update(created_at=DAY)  # ties are broken by id, not by date
    ranked = listed(member_client, q="rendering", ordering="relevance")
    assert ranked == [twice.pk, in_title.pk, older_tie.pk, in_description.pk]
    assert listed(member_client, q="rendering", ordering="-relevance") == ranked[::-1]
    assert listed(member_client, q="rendering status:open", ordering="relevance,-created_at") == [
        twice.pk,
        in_title.pk,
        in_description.pk,
        older_tie.pk,
    ]
    # Without words to rank by: a 400 naming ordering.
    for params in ({}, {"q": "status:open"}, {"q": ""}, {"q": "label:bug"}):
        body = assert_json_error(member_client.get("/api/issues", {"ordering": "relevance", **params}), 400)
        assert list(body) == ["ordering"], body
    # Stop words alone: nothing to rank by either, but they are words: every rank is 0, then newest id first.
    assert listed(member_client, q="the", ordering="relevance") == sorted(world.all | set(ranked), reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "safari -label:ui"},
        {"q": "status:open,closed assignee:none,me"},
        {"q": "created:>=2026-01-05 -project:WEB -label:bug"},
        {"q": "the"},
        {"q": "status:closed", "status": "open"},
        {"q": "issue -resolved:*..2026-01-01", "priority": "medium"},
    ],
)
def test_keyset_pagination_pages_through_a_search(world, member_client, params):
    for n in range(5):
        IssueFactory(title=f"Safari issue {n}", assignee=world.member, created_at=DAY + timedelta(hours=n))
    expected = listed(member_client, **params)
    seen, url = [], "/api/issues?" + urlencode({"pagination": "keyset", "page_size": 2, **params})
    while url:
        body = member_client.get(url).json()
        assert "count" not in body
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == expected


def test_keyset_pagination_takes_no_relevance(world, member_client):
    """Keyset pages are newest first: ``ordering`` (relevance too) is a 400 naming it."""
    params = {"pagination": "keyset", "q": "safari", "ordering": "relevance"}
    body = assert_json_error(member_client.get("/api/issues", params), 400)
    assert list(body) == ["ordering"]


def test_page_numbers_page_through_a_search_with_its_count(world, member_client):
    for n in range(7):
        IssueFactory(title=f"Safari issue {n}", created_at=DAY + timedelta(hours=n))
    for ordering in ("-created_at", "relevance"):
        params = {"q": "safari", "ordering": ordering}
        whole = listed(member_client, **params)
        pages = [member_client.get("/api/issues", {**params, "page_size": 3, "page": n}).json() for n in (1, 2, 3)]
        assert [page["count"] for page in pages] == [len(whole)] * 3 == [9] * 3
        assert [row["id"] for page in pages for row in page["results"]] == whole


# --- the export and the browsable API ------------------------------------------------------------------------------


def test_the_export_takes_q(world, member_client):
    for q in ("fails", "label:bug -assignee:none", "safari project:WEB", "created:>=2026-01-05 -status:resolved"):
        rows = streamed_csv_rows(member_client.get("/api/issues/export", {"q": q}))
        assert [int(row["id"]) for row in rows] == listed(member_client, q=q), q
    for params in ({"q": "zebrafish"}, {"q": "status:open", "status": "closed"}):
        assert streamed_csv_rows(member_client.get("/api/issues/export", params)) == []


def test_an_export_job_runs_the_search_of_its_caller(world, member):
    """The job reads ``q`` again in the worker, for the user who asked (``assignee:me`` is theirs)."""
    from jobs.services import create_job, export_queryset

    job = create_job(kind="export", user=member, params={"query": {"q": ["assignee:me safari"]}})
    assert [issue.pk for issue in export_queryset(job)] == [world.checkout.pk]


def test_the_browsable_list_page_has_a_search_box(world, client):
    client.force_login(world.member)
    page = client.get("/api/issues", HTTP_ACCEPT="text/html").content.decode()
    form = page[page.index("Field filters") :]
    assert '<input type="text" name="q"' in form
    assert form.index('name="q"') < form.index('name="status"')  # the first field of the filter form
    assert '<input type="text" name="label"' in form and '<input type="text" name="project"' in form
    # The form sends q as a query parameter; the page then lists what the search found, the box keeps the query.
    searched = client.get("/api/issues", {"q": "safari status:closed"}, HTTP_ACCEPT="text/html").content.decode()
    assert "Checkout button misaligned" in searched and "Login fails on Safari" not in searched
    assert 'value="safari status:closed"' in searched


def test_the_browsable_form_keeps_list_values(world, client):
    client.force_login(world.member)
    page = client.get("/api/issues", {"label": ["bug", "ui"], "project": "WEB"}, HTTP_ACCEPT="text/html")
    content = page.content.decode()
    assert 'name="label" value="bug,ui"' in content and 'name="project" value="WEB"' in content


def test_a_viewer_searches_too(world, viewer):
    client = make_client(viewer)  # MAIN only, as a viewer
    assert found(client, "fails OR misaligned") == {world.login.pk, world.crash.pk}
