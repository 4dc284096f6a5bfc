"""The search language of ``q`` read without the database (``issues.search.parse_search``), and what the FilterSet
builds from it: the same SQL as the equivalent parameters, and the ``Facets`` the kept counts use (docs/search.md)."""

import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st

from issues import selectors
from issues.access import access_for
from issues.filters import IssueFilterSet
from issues.search import (
    MAX_TERMS,
    NOTHING,
    DateRange,
    Facets,
    Search,
    SearchError,
    date_range,
    parse_search,
)
from tests.factories import ProjectFactory, UserFactory, add_member, default_project

DAY = datetime(2026, 1, 5, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(days=1)


def test_words_keep_websearch_syntax():
    search = parse_search('login fails "exact phrase" -crash -"not this" safari OR chrome OR edge')
    assert search.words == 'login fails "exact phrase" -crash -"not this" safari OR chrome OR edge'
    assert search.included == search.excluded == {}
    assert parse_search("cat or dog").words == "cat OR dog"  # as websearch_to_tsquery reads "or"
    # A quote left open runs to the end, qualifiers included (websearch_to_tsquery reads it so too).
    assert parse_search('"unclosed status:open').words == '"unclosed status:open'
    assert parse_search("10:30 c++ -").words == "10:30 c++ -"


def test_qualifiers_their_lists_and_negations():
    search = parse_search(
        "Status:Open,in_progress -status:closed priority:high project:web,Api -project:old assignee:me,none "
        '-assignee:bob reporter:42 label:bug label:"good first issue" -label:wontfix words'
    )
    assert search.words == "words"
    assert search.included == {
        "status": ["open", "in_progress"],
        "priority": ["high"],
        "project": ["WEB", "API"],
        "assignee": ["me", "none"],
        "reporter": ["42"],
        "label": ["bug", "good first issue"],
    }
    assert search.excluded == {"status": ["closed"], "project": ["OLD"], "assignee": ["bob"], "label": ["wontfix"]}
    assert parse_search("status:open status:closed").included == {"status": ["open", "closed"]}


def test_dates():
    search = parse_search("created:2026-01-05 -updated:>=2026-01-05T10:00:00Z resolved:2026-01-01..*")
    assert search.dates == [
        DateRange("created_at", DAY, NEXT_DAY),
        DateRange("updated_at", DAY + timedelta(hours=10), None, negated=True),
        DateRange("resolved_at", datetime(2026, 1, 1, tzinfo=UTC), None),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-05", (DAY, NEXT_DAY)),  # that whole UTC day
        (">2026-01-05", (NEXT_DAY, None)),  # after that day
        (">=2026-01-05", (DAY, None)),
        ("<2026-01-05", (None, DAY)),  # before that day
        ("<=2026-01-05", (None, NEXT_DAY)),
        ("2026-01-05..2026-01-06", (DAY, NEXT_DAY + timedelta(days=1))),  # both days included
        ("*..2026-01-05", (None, NEXT_DAY)),
        ("2026-01-05..*", (DAY, None)),
        # A date-time is that instant (PostgreSQL keeps microseconds); no offset means UTC.
        ("2026-01-05T10:00:00Z", (DAY + timedelta(hours=10), DAY + timedelta(hours=10, microseconds=1))),
        (">2026-01-05T10:00:00+02:00", (DAY + timedelta(hours=8, microseconds=1), None)),
        ("<=2026-01-05T10:00", (None, DAY + timedelta(hours=10, microseconds=1))),
        ("2026-01-05T10:00:00Z..2026-01-05", (DAY + timedelta(hours=10), NEXT_DAY)),
    ],
)
def test_date_semantics(value, expected):
    assert date_range("created", value) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("foo:bar", "Unknown qualifier 'foo'."),
        ("login -Foo:bar", "Unknown qualifier 'Foo'."),
        ("http://example.com", "Unknown qualifier 'http'."),
        ("status:bogus", "Unknown status 'bogus'. Use open, in_progress, resolved, closed."),
        ("priority:urgent", "Unknown priority 'urgent'. Use low, medium, high, critical."),
        ("status:", "Qualifier 'status:' needs a value right after the colon."),
        ("status: open", "Write the values of 'status:' right after the colon, without spaces"),
        ("label:bug, ui", "Write the values of 'label:' right after the colon, without spaces"),
        ("label:bug,,ui", "Qualifier 'label:' has an empty value."),
        ("label:bug,", "Qualifier 'label:' has an empty value."),
        ('label:""', "Qualifier 'label:' has an empty value."),
        ("label:" + "x" * 51, "Label names are at most 50 characters."),
        ("reporter:none", "'reporter:' takes a username, a user id or 'me'."),
        ("created:yesterday", "'created:' takes a date (2026-01-31)"),
        ("created:2026-13-45", "'created:' takes a date"),
        ("resolved:>", "'resolved:' takes a date"),
        ("updated:9999-12-31T23:59:59-23:00", "'updated:' takes a date"),  # not a moment in UTC
        ("created:*..*", "'created:' takes a range with at least one end"),
        ("created:2026-01-01,2026-02-01", "'created:' takes one date, comparison or range, not a list."),
        ("login OR", "'OR' must stand between two words"),
        ("OR login", "'OR' must stand between two words"),
        ("login OR status:open", "'OR' must stand between two words"),
        ("status:open OR login", "'OR' must stand between two words"),
    ],
)
def test_errors_name_what_is_wrong(query, message):
    with pytest.raises(SearchError) as error:
        parse_search(query)
    assert str(error.value).startswith(message), str(error.value)


def test_terms_are_capped():
    assert parse_search(" ".join(f"w{i}" for i in range(MAX_TERMS)))
    assert parse_search("label:" + ",".join(f"l{i}" for i in range(MAX_TERMS)))
    for too_many in (
        " ".join(f"w{i}" for i in range(MAX_TERMS + 1)),
        "-".join(f"w{i}" for i in range(MAX_TERMS + 1)),  # one hyphenated word is as many words to look up
        '"' + " ".join(f"w{i}" for i in range(MAX_TERMS + 1)) + '"',
        "status:open " + " ".join(f"w{i}" for i in range(MAX_TERMS)),
    ):
        with pytest.raises(SearchError, match=f"at most {MAX_TERMS} terms"):
            parse_search(too_many)


# --- what the FilterSet builds ---------------------------------------------------------------------------------


def filterset(user, query: str) -> IssueFilterSet:
    """The list's FilterSet for ``user`` and the query string ``query``, its queryset built."""
    data = QueryDict(query)
    request = SimpleNamespace(user=user, query_params=data)
    built = IssueFilterSet(data=data, queryset=selectors.issue_list(access_for(user)), request=request)
    assert built.is_valid(), built.errors
    built.qs  # noqa: B018  # builds the queryset, and with it ``facets``
    return built


@pytest.fixture
def people(db):
    """A member of MAIN and WEB; alice; the projects' ids."""
    member = UserFactory(username="member", role="member")
    web = ProjectFactory(key="WEB")
    add_member(member, web, "member")
    alice = UserFactory(username="alice")
    return SimpleNamespace(member=member, alice=alice, main=default_project().pk, web=web.pk)


@pytest.mark.parametrize(
    ("q", "params"),
    [
        ("status:open label:bug", "status=open&label=bug"),
        ("status:open,closed priority:high", "status=open,closed&priority=high"),
        ("project:WEB assignee:none", "project=WEB&assignee=none"),
        ("label:bug label:ui", "label=bug&label=ui"),
        ("created:>=2026-01-05", "created_after=2026-01-05T00:00:00Z"),
        ("created:<2026-01-05", "created_before=2026-01-05T00:00:00Z"),
        ("updated:>=2026-01-05T10:00:00Z", "updated_after=2026-01-05T10:00:00Z"),
    ],
)
def test_qualifiers_build_the_sql_of_their_parameters(people, q, params):
    from_q = filterset(people.member, f"q={q.replace(' ', '+')}")
    from_params = filterset(people.member, params)
    assert str(from_q.qs.query) == str(from_params.qs.query)
    assert from_q.facets == from_params.facets


def test_me_and_a_username_build_the_sql_of_the_id(people):
    alice = people.alice.pk
    assert str(filterset(people.alice, "q=assignee:me").qs.query) == str(
        filterset(people.alice, f"assignee={alice}").qs.query
    )
    assert str(filterset(people.member, "q=reporter:alice").qs.query) == str(
        filterset(people.member, f"reporter={alice}").qs.query
    )


def test_facets(people):
    member, alice = people.member, people.alice.pk

    def facets(query: str) -> Facets | None:
        return filterset(member, query).facets

    assert facets("ordering=-id") == Facets()  # the order is no filter
    assert facets("status=open") == Facets(statuses=["open"])
    assert facets("q=status:open") == Facets(statuses=["open"])
    assert facets("q=-status:closed,resolved") == Facets(statuses=["open", "in_progress"])
    assert facets("q=-priority:low") == Facets(priorities=["medium", "high", "critical"])
    assert facets("status=open,closed&q=status:closed,resolved") == Facets(statuses=["closed"])
    assert facets("status=open&q=status:closed") == NOTHING == Facets(statuses=[])  # nothing matches
    assert facets("q=project:WEB") == Facets(project_ids=[people.web])
    assert facets("project=WEB,MAIN&q=-project:main") == Facets(project_ids=[people.web])
    assert facets("q=-project:WEB") == Facets(project_ids=[people.main])  # the member's other project
    assert facets(f"q=assignee:alice,none priority:high&assignee={alice}") == Facets(
        priorities=["high"], assignees=[alice]
    )
    assert facets("q=assignee:none") == Facets(assignees=[None])
    assert facets("q=assignee:me,alice -assignee:alice&project=WEB") == Facets(
        project_ids=[people.web], assignees=[member.pk]
    )
    assert facets("q=-assignee:alice,none") == Facets(assignees_excluded=[alice, None])
    assert facets(f"assignee={alice}&q=-assignee:alice") == NOTHING
    assert facets("q=project:WEB+-project:web") == NOTHING
    # Stop words alone: the word part is ignored, so the counts still count.
    assert facets("q=the+status:open") == Facets(statuses=["open"])
    # Anything the facet counts do not know: no facets.
    for other in (
        "q=login",
        "q=status:open+login",
        "q=-login",
        "label=bug",
        "q=label:bug",
        "q=-label:bug",
        "reporter=1",
        "q=reporter:me",
        "q=-reporter:me",
        "created_after=2026-01-01T00:00:00Z",
        "updated_after=2026-01-01T00:00:00Z",
        "q=created:2026-01-05",
        "q=-resolved:>2026-01-05",
        "status=open&q=updated:<2026-01-05",
    ):
        assert facets(other) is None, other


FRAGMENTS = [*'ab:-," OR>=<.*\\\t\n1é\x01', "status:", "-label:", "created:", "or", "2026-01-05", "..", "me"]


def parse_outcome(text: str) -> Search | SearchError:
    try:
        return parse_search(text)
    except SearchError as error:
        return error


@settings(max_examples=300, deadline=None, derandomize=os.environ.get("FUZZ_RANDOM") != "1")
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_any_text_parses_or_is_a_search_error(text):
    """Whatever a client types is a ``Search`` or a ``SearchError`` with a message, never another exception (a 500)."""
    outcome = parse_outcome(text)
    assert isinstance(outcome, Search) or str(outcome), text
