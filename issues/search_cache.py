"""Word-search results kept by the web process between requests, exact in every snapshot.

Counting a word search reads the table row of every match (GIN has no index-only scans): at 1,000,000 issues a
phrase in 2,384 of the caller's issues costs 7-11 ms, a pair of words in 3,950 about 17-21 ms, on every request,
and a dashboard, a refresh and every page after the first ask the same again. A result read once (its count, and the
ids of its first page) is kept here, in this process's memory, with the state of the search generations of the
caller's projects (``SearchGeneration``, bumped by the database in the transaction of every write that changes what
a word search finds there: a document written or deleted, a label link added or removed, a label renamed or
deleted). Each request reads that state again, in the statement that checks its words (``word_state``); any commit
of such a write since the result was read changes it, and the result is read afresh. Nothing is ever invalidated
by hand, and nothing is shared between processes: each keeps what it read, and they all check against the same
generations.

Why it is exact:
- a project's generation rows only grow (``+1`` per statement, rows never deleted), so their sum over some
  projects is the same at two moments only if no write to those projects committed in between (a state names the
  projects it sums over: sums over other projects are never compared);
- the state is read *before* the result (separate statements, READ COMMITTED): a write that commits between the
  two makes the kept state older than the result, so the next check finds it changed and reads again;
- a transaction that has written anything (``pg_current_xact_id_if_assigned()``) neither uses nor keeps results:
  its own uncommitted bumps could be rolled back and their sum reached again by other commits; nor does any
  ``atomic`` block (it could write between the state and the result, or hold an older snapshot than the state's:
  REPEATABLE READ), so in practice only autocommit requests, as the API's GETs run, keep and use results;
- the state also holds the server's start time: a promoted replica or a restarted server whose counters went back
  (an asynchronous replica that had not received the last commits) is a new state;
- TRUNCATE bumps nothing but gives the tables new file nodes, which the state includes.

The issues of a kept first page are read again on every request (their status, title and labels are current), by
their ids, from the caller's issues (``selectors.issues_by_ids``). ``SEARCH_CACHE_ENTRIES`` results per process
(least recently used dropped first); 0 turns the cache off.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection

from .triggers import SEARCH_CONFIG

T = TypeVar("T")

_TABLES = ("issues_searchgeneration", "issues_issuesearch", "issues_issue_labels", "issues_label")
_NODES = ", ".join(f"pg_relation_filenode('{table}')" for table in _TABLES)

_entries: "OrderedDict[Hashable, tuple[Any, Any]]" = OrderedDict()
_lock = threading.Lock()


def _state_columns(projects: Sequence[int] | None) -> tuple[str, list[Any]]:
    """The select list that reads the state (the generations' sum over ``projects``, None: all; whether this
    transaction has written; the tables' file nodes; the server's start time), and its parameters."""
    where, params = ("", []) if projects is None else (" WHERE project_id = ANY(%s::bigint[])", [list(projects)])
    total = f"(SELECT coalesce(sum(generation), 0) FROM issues_searchgeneration{where})"
    return f"{total}, pg_current_xact_id_if_assigned() IS NULL, ARRAY[{_NODES}], pg_postmaster_start_time()", params


def _state(projects: Sequence[int] | None, total: int, clean: bool, nodes: list[int], started: Any) -> Any:
    """The state, naming the projects it sums over: two callers who see different projects may run the same search
    (``project:WEB``), and sums over different projects say nothing of each other."""
    return (None if projects is None else tuple(sorted(projects)), total, tuple(nodes), started) if clean else None


def word_state(words: str, projects: Sequence[int] | None) -> tuple[bool, bool, Any]:
    """Whether ``websearch_to_tsquery`` makes something of ``words`` (stop words ("the") and punctuation alone make
    an empty query, which PostgreSQL matches with nothing; the search ignores such a word part instead), whether
    some issues wait for their search document (then the words are matched through ``search_index.issues_matching``,
    which finds those too; else through the document table alone), and the generations of ``projects`` (the
    caller's: every search of theirs looks in some of them, and a state over more projects than a search looks in
    is only more often out of date). One statement, read before any result of the search."""
    columns, params = _state_columns(projects)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT numnode(websearch_to_tsquery(%s::regconfig, %s)) > 0,"
            f" EXISTS (SELECT 1 FROM issues_issuesearchpending), {columns}",
            [SEARCH_CONFIG, words, *params],
        )
        lexemes, queued, *state = cursor.fetchone()
    return bool(lexemes), bool(queued), _state(projects, *state)


def remembered(key: Hashable, state: Any, read: Callable[[], T]) -> T:
    """What ``read()`` returns: the one kept under ``key`` when it was read in the same ``state`` of the search
    generations (read before ``read()`` runs: ``word_state``; None: keep nothing). ``key`` must name
    everything ``read`` depends on but those generations: its SQL and parameters."""
    size = settings.SEARCH_CACHE_ENTRIES
    if size <= 0 or state is None or connection.in_atomic_block:
        return read()
    key = (connection.alias, connection.settings_dict["NAME"], state[0], key)  # (state[0]: the projects summed)
    with _lock:
        kept = _entries.get(key)
        if kept is not None and kept[0] == state:
            _entries.move_to_end(key)
            return kept[1]
    value = read()
    with _lock:
        _entries[key] = (state, value)
        _entries.move_to_end(key)
        while len(_entries) > size:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    """Forget every kept result (the tests use it; nothing else needs to)."""
    with _lock:
        _entries.clear()
