"""The search language of ``q`` (docs/search.md): words and GitHub-style qualifiers, read with lark.

``parse_search`` reads the text alone (no query): the word part, kept as a ``websearch_to_tsquery`` string so that
phrases, ``-word`` and ``OR`` mean what PostgreSQL's web search syntax means, and the qualifiers, with their values
checked. ``Search.resolve`` names things for the caller (``me``, usernames, project keys) and turns what it says
into the vocabulary of the list's parameters: ``Terms``, which ``issues.filters.IssueFilterSet`` merges with the
parameters (``merge_terms``) before each filter runs once, so ``q=status:open label:bug`` and
``?status=open&label=bug`` are the same SQL. ``facets_of`` says when the kept facet counts can count the result.

Every error is a ``SearchError`` whose message the client sees as ``{"q": [message]}``.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from . import search_cache
from .access import access_for, resolve_project_keys
from .models import MAX_ID, Label, Priority, Project, Status
from .params import as_utc

MAX_QUERY_CHARS = 1_000
# Words (each word of a phrase or of a hyphenated word counts) and qualifier values together.
MAX_TERMS = 50
LABEL_NAME_MAX: int = Label._meta.get_field("name").max_length or 50
DATE_COLUMNS = {"created": "created_at", "updated": "updated_at", "resolved": "resolved_at"}
QUALIFIERS = ("status", "priority", "project", "assignee", "reporter", "label", *DATE_COLUMNS)
NONE = "none"  # the assignee parameter's word for "unassigned"

# The lexer does the work: a qualifier is its name and colon (QUALIFIER, tried first), then values separated by
# commas; anything else is a word or a "phrase" (a quote left open runs to the end, as websearch_to_tsquery reads
# it), and OR joins words. The contextual lexer tries only what the parser can take next: a value right after a
# qualifier, ``OR`` only after a word. A word never starts like a qualifier, so ``a OR label:x`` is an error
# instead of a search for the word "label:x".
GRAMMAR = r"""
start: (qualifier | disjunction)*
disjunction: _word (_OR _word)*
_word: WORD | PHRASE
qualifier: QUALIFIER _value? (COMMA _value?)*
_value: VALUE | QUOTED

QUALIFIER.4: /-?[A-Za-z][A-Za-z_]*:/
COMMA.3: ","
_OR.2: /(?i:or)(?=[\s"]|$)/
VALUE.2: /[^\s",]+/
QUOTED.2: /"[^"]*"?/
PHRASE.1: /-?"[^"]*"?/
WORD: /(?!-?[A-Za-z][A-Za-z_]*:)[^\s"]+/
%ignore /\s+/
"""
_PARSER = Lark(GRAMMAR, parser="lalr")
_TERM_PARTS = re.compile(r"\w+")
_COMPARISON = re.compile(r"(>=|<=|>|<)?(.*)", re.DOTALL)
OR_MISPLACED = "'OR' must stand between two words (qualifiers take comma lists: status:open,closed)."
DATE_FORMS = "a date (2026-01-31), a date-time (2026-01-31T12:00:00Z), >, >=, < or <= one of those, or a range (a..b)"


class SearchError(ValueError):
    """A query that cannot be run; ``str()`` is the message for the client."""


@dataclass(frozen=True)
class Facets:
    """What the kept facet counts (``IssueFacetTally``) can count: the issues of any of ``project_ids`` (resolved and
    checked visible), any of ``statuses``, ``priorities`` and ``assignees`` (None inside = unassigned) and none of
    ``assignees_excluded``. A dimension that is None is not constrained; an empty list matches nothing."""

    project_ids: list[int] | None = None
    statuses: list[str] | None = None
    priorities: list[str] | None = None
    assignees: list[int | None] | None = None
    assignees_excluded: list[int | None] = field(default_factory=list)


@dataclass(frozen=True)
class DateRange:
    """``column`` from ``start`` (inclusive) to ``end`` (exclusive), either end open when None; or, ``negated``,
    outside it (an issue whose ``resolved_at`` is null is outside every range)."""

    column: str
    start: datetime | None
    end: datetime | None
    negated: bool = False

    def condition(self) -> Q:
        condition = Q()
        if self.start is not None:
            condition &= Q(**{f"{self.column}__gte": self.start})
        if self.end is not None:
            condition &= Q(**{f"{self.column}__lt": self.end})
        return ~condition if self.negated else condition


@dataclass
class Terms:
    """A search resolved for one caller, in the parameters' vocabulary: None = not constrained, a list = any of
    (``assignees`` holds user ids and ``"none"``, as ``?assignee=`` does), except ``labels``: all of them. An excluded
    list is what remains to exclude once the "any of" lists have dropped those values."""

    words: str = ""  # websearch_to_tsquery text; "" = no words
    word_filter: bool = False  # the words make a non-empty tsquery (not stop words only)
    queued: bool = False  # some issues wait for their search document (IssueSearchPending): see search_index
    generations: Any = None  # the state of the caller's projects' search generations, read with the words
    statuses: list[str] | None = None
    priorities: list[str] | None = None
    project_ids: list[int] | None = None
    assignees: list[int | str] | None = None
    assignees_excluded: list[int | str] = field(default_factory=list)
    reporters: list[int] | None = None
    reporters_excluded: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    labels_excluded: list[str] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)
    rank: bool = False  # set by the FilterSet when the list is ordered by relevance

    @property
    def only_facets(self) -> bool:
        """Whether everything it says is about project, status, priority or assignee."""
        other = (self.reporters, self.reporters_excluded, self.labels, self.labels_excluded, self.dates)
        return not self.word_filter and not any(other)


@dataclass
class Search:
    """A parsed ``q``: the word part (websearch_to_tsquery text) and each qualifier's values, included and excluded
    (names lower-cased, status and priority values checked, dates read)."""

    words: str = ""
    included: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    dates: list[DateRange] = field(default_factory=list)

    def values(self, name: str) -> tuple[list[str], list[str]]:
        return self.included.get(name, []), self.excluded.get(name, [])

    def resolve(self, request: Any) -> Terms:
        """The search for the caller of ``request``. Raises ``SearchError`` for an unknown user, or a project key
        that is unknown or names a project the caller cannot see (the same message, as ``?project=`` says it)."""
        terms = Terms(words=self.words)
        if self.words:
            words = search_cache.word_state(self.words, access_for(request.user).visible_ids)
            terms.word_filter, terms.queued, terms.generations = words
        terms.statuses = _choices(*self.values("status"), Status.values)
        terms.priorities = _choices(*self.values("priority"), Priority.values)
        terms.project_ids = self._project_ids(request)
        users = self._user_ids(request)

        def ids(values: list[str]) -> list[Any]:
            return [user for value in values for user in users[value]]

        assignees, not_assignees = self.values("assignee")
        terms.assignees, terms.assignees_excluded = _any_of(ids(assignees), ids(not_assignees))
        reporters, not_reporters = self.values("reporter")
        terms.reporters, terms.reporters_excluded = _any_of(ids(reporters), ids(not_reporters))
        terms.labels, terms.labels_excluded = self.values("label")
        terms.dates = list(self.dates)
        return terms

    def _project_ids(self, request: Any) -> list[int] | None:
        """The projects of ``project:`` (any of them, without those of ``-project:``), checked visible."""
        included, excluded = self.values("project")
        if not included and not excluded:
            return None
        access = access_for(request.user)
        try:
            wanted = resolve_project_keys(access, included) if included else None
            unwanted = set(resolve_project_keys(access, excluded))
        except ValueError as exc:
            raise SearchError(str(exc)) from None
        if wanted is None:  # exclusions only: every project the caller sees but those
            visible = access.visible_ids
            wanted = list(Project.objects.order_by("pk").values_list("pk", flat=True)) if visible is None else visible
        return [pk for pk in wanted if pk not in unwanted]

    def _user_ids(self, request: Any) -> dict[str, list[Any]]:
        """Each value of ``assignee:`` and ``reporter:`` as the user ids it names (or ``"none"``): ``me``, an id, or
        a username, matched exactly, else ignoring case (one query; a second one for names not found exactly)."""
        values = {value for name in ("assignee", "reporter") for found in self.values(name) for value in found}
        users: dict[str, list[Any]] = {}
        names = set()
        for value in values:
            if value.lower() == "me":
                users[value] = [request.user.pk]
            elif value.lower() == NONE:
                users[value] = [NONE]
            elif value.isascii() and value.isdigit():
                if len(value) > 19 or not 1 <= int(value) <= MAX_ID:
                    raise SearchError(f"Unknown user '{value}'.")
                users[value] = [int(value)]
            else:
                names.add(value)
        if not names:
            return users
        people = get_user_model().objects.order_by("pk")
        for username, pk in people.filter(username__in=names).values_list("username", "pk"):
            users[username] = [pk]
        missing = names - users.keys()
        if missing:
            ignoring_case = Q()
            for name in missing:
                ignoring_case |= Q(username__iexact=name)
            for username, pk in people.filter(ignoring_case).values_list("username", "pk"):
                for name in missing:
                    if name.lower() == username.lower():
                        users.setdefault(name, []).append(pk)
            unknown = sorted(missing - users.keys())
            if unknown:
                raise SearchError(f"Unknown user '{unknown[0]}'.")
        return users


T = TypeVar("T")


def _any_of(included: list[T], excluded: list[T]) -> tuple[list[T] | None, list[T]]:
    """``(any of, none of)``: the included values without the excluded ones (then nothing is left to exclude), or
    None and the excluded values when nothing is included."""
    if not included:
        return None, _distinct(excluded)
    return [value for value in _distinct(included) if value not in excluded], []


def _choices(included: list[str], excluded: list[str], choices: list[str]) -> list[str] | None:
    """Status or priority: the included values (every choice when none is) without the excluded ones."""
    if not included and not excluded:
        return None
    return [value for value in _distinct(included or choices) if value not in excluded]


def _distinct(values: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(values))


# --- reading the text ----------------------------------------------------------------------------------------------


def parse_search(text: str) -> Search:
    """``q`` as a ``Search``; raises ``SearchError``. Runs no query."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
        if "WORD" in expected:
            raise SearchError(OR_MISPLACED) from None
        raise SearchError(f"Cannot read the search near character {getattr(exc, 'column', '?')}.") from None
    search = Search()
    words: list[str] = []
    terms = 0
    for item in tree.children:
        assert isinstance(item, Tree)
        if item.data == "disjunction":
            tokens = [str(token) for token in item.children]
            if len(tokens) == 1 and tokens[0].lower() == "or":
                raise SearchError(OR_MISPLACED)
            terms += sum(max(1, len(_TERM_PARTS.findall(token))) for token in tokens)
            words.append(" OR ".join(tokens))
        else:
            terms += _read_qualifier(search, item.children)  # type: ignore[arg-type]  # tokens only
        if terms > MAX_TERMS:
            raise SearchError(f"A search has at most {MAX_TERMS} terms (words and qualifier values).")
    search.words = " ".join(words)
    return search


def _read_qualifier(search: Search, tokens: list[Token]) -> int:
    """Add one qualifier to ``search``; the number of its values."""
    head = tokens[0]
    negated = head.startswith("-")
    name = head.strip("-:").lower()
    if name not in QUALIFIERS:
        raise SearchError(f"Unknown qualifier '{head.strip('-:')}'.")
    values: list[str] = []
    expect_value = True
    for previous, token in pairwise(tokens):
        if token.start_pos != previous.end_pos:
            raise SearchError(
                f"Write the values of '{name}:' right after the colon, without spaces (quote a value "
                f"that has spaces): {name}:a,b."
            )
        if token.type == "COMMA":
            if expect_value:
                raise SearchError(f"Qualifier '{name}:' has an empty value.")
            expect_value = True
        else:
            value = token[1:].removesuffix('"') if token.type == "QUOTED" else str(token)
            if not value.strip():
                raise SearchError(f"Qualifier '{name}:' has an empty value.")
            values.append(value.strip())
            expect_value = False
    if expect_value:
        raise SearchError(
            f"Qualifier '{name}:' needs a value right after the colon."
            if len(tokens) == 1
            else f"Qualifier '{name}:' has an empty value."
        )
    if name in DATE_COLUMNS:
        if len(values) > 1:
            raise SearchError(f"'{name}:' takes one date, comparison or range, not a list.")
        start, end = date_range(name, values[0])
        search.dates.append(DateRange(DATE_COLUMNS[name], start, end, negated))
        return 1
    if name in ("status", "priority"):
        choices = Status.values if name == "status" else Priority.values
        values = [value.lower() for value in values]
        for value in values:
            if value not in choices:
                raise SearchError(f"Unknown {name} '{value}'. Use {', '.join(choices)}.")
    elif name == "project":
        values = [value.upper() for value in values]
    elif name == "reporter" and any(value.lower() == NONE for value in values):
        raise SearchError("'reporter:' takes a username, a user id or 'me'.")
    elif name == "label":
        for value in values:
            if len(value) > LABEL_NAME_MAX:
                raise SearchError(f"Label names are at most {LABEL_NAME_MAX} characters.")
    (search.excluded if negated else search.included).setdefault(name, []).extend(values)
    return len(values)


def date_range(name: str, value: str) -> tuple[datetime | None, datetime | None]:
    """``created:`` and the others: ``[start, end)`` in UTC, either end None when open. A date is its whole UTC day,
    a date-time that instant: ``>D`` is after it (from its end), ``>=D`` from its start, ``<D`` before its start,
    ``<=D`` up to its end, ``a..b`` from a's start to b's end (``*`` leaves an end open), ``D`` alone D itself."""
    if ".." in value:
        low, _, high = value.partition("..")
        if low == high == "*":
            raise SearchError(f"'{name}:' takes a range with at least one end: a..b, a..* or *..b.")
        start = None if low == "*" else _moment(name, low)[0]
        end = None if high == "*" else _moment(name, high)[1]
        return start, end
    match = _COMPARISON.fullmatch(value)
    assert match is not None  # the pattern matches any text
    operator, moment = match.groups()
    start, end = _moment(name, moment)
    return {
        None: (start, end),
        ">": (end, None),
        ">=": (start, None),
        "<": (None, start),
        "<=": (None, end),
    }[operator]


def _moment(name: str, text: str) -> tuple[datetime, datetime]:
    """A date's UTC day, or a date-time's instant (to the next microsecond, PostgreSQL's precision)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = parse_date(text)
            if day is not None:
                start = datetime.combine(day, time.min, tzinfo=UTC)
                return start, start + timedelta(days=1)
        else:
            moment = parse_datetime(text)
            if moment is not None:
                start = as_utc(moment)
                return start, start + timedelta(microseconds=1)
    except (ValueError, OverflowError):
        pass
    raise SearchError(f"'{name}:' takes {DATE_FORMS}; not '{text}'.")


# --- the parameters' vocabulary ------------------------------------------------------------------------------------


def merge_terms(values: dict[str, Any], terms: Terms) -> dict[str, Any]:
    """The FilterSet's cleaned values ANDed with ``terms``, in the filters' vocabulary: each "any of" dimension as a
    list, or None when nothing constrains it (an empty list: nothing matches), narrowed to what both allow
    (``project`` already as ids); labels add up (all must match); ``q`` becomes ``terms`` (what no parameter says:
    words, exclusions, dates). With an empty ``Terms`` it only puts the parameters into that shape."""
    merged = dict(values)
    merged["status"] = _both(values.get("status") or None, terms.statuses)
    merged["priority"] = _both(values.get("priority") or None, terms.priorities)
    merged["project"] = _both(values.get("project"), terms.project_ids)
    merged["assignee"] = _both(_listed(values.get("assignee")), terms.assignees)
    merged["reporter"] = _both(_listed(values.get("reporter")), terms.reporters)
    merged["label"] = [*(values.get("label") or []), *terms.labels]
    # An exclusion of a value the parameter did not allow anyway is settled: only the parameter's SQL is left.
    for name, excluded in (("assignee", terms.assignees_excluded), ("reporter", terms.reporters_excluded)):
        if merged[name] is not None and excluded:
            merged[name] = [value for value in merged[name] if value not in excluded]
            excluded.clear()
    merged["q"] = terms
    return merged


def _listed(value: Any) -> list[Any] | None:
    return None if value is None else [value]


def _both(first: list[T] | None, second: list[T] | None) -> list[T] | None:
    """What both "any of" lists allow (None allows everything), in the first one's order."""
    if first is None:
        return second
    if second is None:
        return first
    return [value for value in first if value in second]


FACET_NAMES = ("project", "status", "priority", "assignee")
NOTHING = Facets(statuses=[])  # the facets of a filter that matches nothing (``matches_nothing``)
# What the facet counts cannot count: any of these active makes ``facets_of`` None.
OTHER_FILTERS = ("label", "reporter", "created_after", "created_before", "updated_after")


def matches_nothing(merged: Mapping[str, Any]) -> bool:
    """Whether some "any of" dimension of merged values (``merge_terms``) allows nothing."""
    return any(merged.get(name) == [] for name in (*FACET_NAMES, "reporter"))


def facets_of(merged: Mapping[str, Any]) -> Facets | None:
    """The ``Facets`` of merged values (``merge_terms``), or None when a filter the facet counts do not know is
    active (words, labels, reporter, dates). ``ordering`` changes nothing."""
    terms: Terms = merged["q"]
    if any(merged.get(name) for name in OTHER_FILTERS) or not terms.only_facets:
        return None

    def users(ids: Iterable[Any]) -> list[int | None]:
        return [None if user == NONE else user for user in ids]

    assignees = merged.get("assignee")
    return Facets(
        project_ids=merged.get("project"),
        statuses=merged.get("status"),
        priorities=merged.get("priority"),
        assignees=None if assignees is None else users(assignees),
        assignees_excluded=users(terms.assignees_excluded),
    )
