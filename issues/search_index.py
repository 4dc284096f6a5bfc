"""The search documents of queued issues (``IssueSearchPending``), and the full-text match that stays exact while
some are queued.

A large INSERT (an import's batch) queues its rows instead of computing their documents in the writer's transaction:
``to_tsvector`` and the GIN index cost about as much per row as the rest of the import's write (docs/search.md has
the figures). After the commit the rows are indexed by ``index_pending``: in a Celery worker (``issues.index_search``)
when there is a broker, else on a thread of this process; the beat sweep runs it too, for a hand-off that was lost.

A search matches an indexed issue by its document (the GIN index) and a queued one by its document computed on the
fly: ``issues_matching`` unions both, so an issue is found whether or not it is indexed yet. The queue is empty but
for the seconds after an import.
"""

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection, connections, transaction
from django.db.models import BigIntegerField, Count, Exists, Func, OuterRef, QuerySet, Subquery, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce, Lower

from . import search_cache
from .access import access_for
from .models import SEARCH_CONFIG, SEARCH_DOCUMENT_SQL, Issue, IssueSearch, IssueSearchPending, Label
from .params import distinct_values

logger = logging.getLogger(__name__)

INDEX_BATCH = 2_000  # rows per indexing transaction: short locks, and progress that survives a killed worker

INDEX_SQL = f"""
WITH taken AS (
    DELETE FROM issues_issuesearchpending
    WHERE issue_id IN (
        SELECT issue_id FROM issues_issuesearchpending ORDER BY issue_id LIMIT %s FOR UPDATE SKIP LOCKED
    )
    RETURNING issue_id
), texts AS (
    -- FOR SHARE: an UPDATE of the text waits for this transaction, then finds the document row and rewrites it;
    -- one that committed first is read here as it is now (READ COMMITTED re-reads a locked row's newest version).
    SELECT search_new_rows.id, search_new_rows.project_id, search_new_rows.created_at, search_new_rows.title,
        search_new_rows.description
    FROM issues_issue AS search_new_rows JOIN taken ON taken.issue_id = search_new_rows.id
    FOR SHARE OF search_new_rows
), written AS (
    INSERT INTO issues_issuesearch (issue_id, project_id, created_at, document)
    SELECT search_new_rows.id, search_new_rows.project_id, search_new_rows.created_at, {SEARCH_DOCUMENT_SQL}
    FROM texts AS search_new_rows
    ON CONFLICT (issue_id) DO UPDATE SET document = EXCLUDED.document, created_at = EXCLUDED.created_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM written)
"""


def index_pending(batch: int = INDEX_BATCH) -> int:
    """Write the documents of the queued issues, ``batch`` at a time, each batch in its own transaction, until the
    queue is empty (rows another indexer holds are skipped: several run side by side). Returns the rows indexed."""
    indexed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(INDEX_SQL, [batch])
            taken, written = cursor.fetchone()
        indexed += written
        if taken == 0:
            return indexed


def _index_here() -> None:
    try:
        index_pending()
    except Exception:  # logged; the sweep indexes what is left
        logger.exception("Indexing queued search documents failed; the sweep will retry")
    finally:
        connections.close_all()  # this thread's own connection


def index_soon() -> None:
    """After a commit that queued rows: index them in a worker (with a broker) or on a thread of this process, so
    that the request that wrote them does not wait."""
    from .tasks import index_search

    if settings.CELERY_TASK_ALWAYS_EAGER:
        threading.Thread(target=_index_here, name="search-index", daemon=True).start()
        return
    try:
        with index_search.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, interval_start=0, interval_step=0, timeout=2)
            index_search.apply_async(producer=producer)
    except Exception as exc:  # the broker is down: the beat sweep indexes them
        logger.warning("Handing off search indexing failed (%s); the sweep will index the queued rows", exc)


def issues_matching(issues: QuerySet, query: SearchQuery) -> QuerySet:
    """``issues`` whose title or description match ``query``: indexed ones through the GIN index, queued ones by
    their document computed now. One ``id IN (... UNION ALL ...)``: the planner reads the matching ids first and
    joins them to the issues by primary key."""
    indexed = IssueSearch.objects.filter(document=query).values("issue_id")
    queued = (
        Issue.objects.filter(pk__in=IssueSearchPending.objects.values("issue_id"))
        .annotate(document=computed_document())
        .filter(document=query)
        .order_by()
        .values("pk")
    )
    return issues.filter(pk__in=indexed.union(queued, all=True))


def rank(query: SearchQuery) -> Any:
    """How well an issue matches ``query`` (``ts_rank``: words of the title, weight A, above the description's, B),
    for ``ordering=relevance``; a queued issue is ranked by its document computed now."""
    stored = Subquery(IssueSearch.objects.filter(issue_id=OuterRef("pk")).values("document")[:1])
    return SearchRank(Coalesce(stored, computed_document()), query)


def computed_document() -> CombinedExpression:
    """An issue's document computed from its row, as ``SEARCH_DOCUMENT_SQL`` writes it (tests check both agree)."""
    return SearchVector("title", config=SEARCH_CONFIG, weight="A") + SearchVector(
        "description", config=SEARCH_CONFIG, weight="B"
    )


def queued() -> int:
    """How many issues wait for their document (for the sweep's log and the tests)."""
    return IssueSearchPending.objects.count()


# --- counting and paging word searches from the documents alone ------------------------------------------------------
# Each document row keeps its issue's project and creation time (``IssueSearch``). With words and no filter but those
# the documents can apply too (projects, labels, creation dates), the count is read from the documents alone, and
# the list's default order (newest first) walks the documents' own (created_at, issue_id) index: at 1,000,000 issues,
# a pair of words in 1% of them no longer probes the issue table once per match (docs/search.md has the figures).
ISSUE_COLUMNS = ("status", "priority", "assignee", "reporter", "updated_after")  # filters a document cannot apply


class ProbeExists(Exists):
    """``EXISTS`` run as a probe of each row (a subplan: ``OFFSET 0`` keeps PostgreSQL from turning it into a join).
    With words, the label links of each match are probed by its issue id, one index descent; as a join, on a label
    table without statistics the planner hashed every carrier of the label first (the 231,462 carriers of "bug" at
    1,000,000 issues: 2-3 s for a pair of words in 3,950 of the caller's issues; 0.03 s probed)."""

    template = "EXISTS(%(subquery)s OFFSET 0)"


def label_probes(names: Iterable[str], *, carried: bool) -> list[Any]:
    """Conditions on rows (issues, or documents: their ``pk`` is the issue's id): carrying every label of ``names``
    (``carried``), or none of them, matched ignoring case as ``filters.issues_with_all_labels`` matches them. Built
    once, filtered on by the documents and the issues alike (each ``filter()`` resolves its own copy)."""
    names = distinct_values(names, key=str.lower)
    if not names:
        return []
    labels = Label.objects.alias(lowered=Lower("name")).order_by().values("id")
    links = Issue.labels.through.objects.filter(issue_id=OuterRef("pk"))
    # ``label_id = ANY(ARRAY(SELECT id ...))``: the labels' ids are read once per statement (an InitPlan), and each
    # probe is one descent of the (issue_id, label_id) index; ``label_id IN (SELECT ...)`` joined the labels again in
    # every probe (0.24 s instead of 0.034 s to count a pair of words with label:bug at 1,000,000 issues).
    if carried:
        return [
            ProbeExists(links.filter(label_id__any=ArraySubquery(labels.filter(lowered=Lower(Value(name))))))
            for name in names
        ]
    named = ArraySubquery(labels.filter(lowered__in=[Lower(Value(name)) for name in names]))
    return [~ProbeExists(links.filter(label_id__any=named))]


@dataclass(frozen=True)
class DocumentSearch:
    """A word search that its documents can answer alone: ``documents`` are those of the issues it selects,
    ``projects`` the projects it looks in (None: any)."""

    documents: QuerySet
    projects: list[int] | None
    labels: list[Any]  # the label conditions (``label_probes``), already on ``documents``
    generations: Any  # the search generations' state read with the words (``search_cache.word_state``)

    def probe_labels(self, issues: QuerySet, merged: dict[str, Any]) -> tuple[QuerySet, dict[str, Any]]:
        """``issues`` with the labels of ``merged`` (included and excluded) as probes of each match, not joins (see
        ``ProbeExists``), and ``merged`` without them (the FilterSet's own label filters have nothing left to do)."""
        return issues.filter(*self.labels), {**merged, "label": [], "q": replace(merged["q"], labels_excluded=[])}

    def counted(self, issues: QuerySet, *, newest_first: bool) -> "tuple[QuerySet, CountSource]":
        """``issues`` (filtered, words included) in the projects searched, newest first by the documents' copies of
        their creation time and id (the same order) when the list's default order is asked, and what counts them
        and picks their first page from the documents alone (the list's paginator uses it)."""
        if self.projects is not None:
            issues = issues.filter(search__project_id__any=self.projects)
        if newest_first:
            issues = issues.order_by("-search__created_at", "-search__issue_id")
        return issues, CountSource(self.documents, newest_first, state=self.generations)


@dataclass(frozen=True)
class CountSource:
    """How the list counts its issues without reading them: ``rows``, the word search's documents with every filter
    applied (``documents_matching``), or the links of the labels asked (``labels_counted``). For a word search
    ``newest`` first, the ids of its first page are read with the count, in one pass over the matches
    (``count_and_first``); the paginator reads those issues by their ids (``selectors.issues_by_ids``: the
    documents' copies of the creation time are the issues'). A word search's results are kept by this process
    while the search generations of the caller's projects stay in the ``state`` they were in when its words were
    checked (``issues.search_cache``; None: nothing is kept)."""

    rows: QuerySet
    newest: bool
    state: Any = None

    def count(self) -> int:
        if self.state is None:
            return self.rows.count()
        return search_cache.remembered(("count", *self._sql()), self.state, self.rows.count)

    def count_and_first(self, size: int) -> tuple[int, list[int]]:
        """The count and the ids of the first ``size`` issues, newest first (by their documents' copies of the creation
        time and id), read by one statement: the matches are read once where a count and a page read them twice (a
        phrase at 1,000,000 issues: 7 ms each). Not ``COUNT(*) OVER ()`` beside a ``LIMIT``: PostgreSQL 15 costs that
        as if the limit stopped the scan early, and walked the creation-time index through every document (0.4 s
        for a pair of words)."""

        def read() -> tuple[int, list[int]]:
            newest = ArrayAgg("issue_id", order_by=("-created_at", "-issue_id"))
            read = self.rows.aggregate(total=Count("*"), first=Head(newest, size=int(size)))
            return read["total"], read["first"] or []

        if self.state is None:
            return read()
        return search_cache.remembered(("first", int(size), *self._sql()), self.state, read)

    def _sql(self) -> tuple[str, str]:
        """What the rows are, as a key: their SQL and its parameters (lists among them, so their text)."""
        sql, params = self.rows.query.sql_with_params()
        return sql, repr(params)


class Head(Func):
    """The first ``size`` elements of an array, ``(array)[1:size]``: an aggregate's whole array stays in the
    database."""

    template = "(%(expressions)s)[1:%(size)d]"
    output_field = ArrayField(BigIntegerField())


def labels_counted(merged: Mapping[str, Any], request: Any) -> CountSource | None:
    """What counts a list filtered by labels and nothing else (projects aside) without reading its issues: the links
    of those labels of the projects searched (a link's issue is in its label's project: migration 0012), one per
    issue for one name, and the issues carrying all of several names (names are unique per project ignoring case).
    An index-only scan of the links' label index: at 1,000,000 issues the 90,834 carriers of ``bug`` in 5 projects
    are counted in 4-9 ms, where the issues' ``COUNT(*)`` with its ``EXISTS`` took 0.5 s. None for any other filter."""
    terms = merged["q"]
    names = distinct_values(merged.get("label") or [], key=str.lower)
    excluded = terms.labels_excluded or terms.assignees_excluded or terms.reporters_excluded or terms.dates
    if not names or terms.word_filter or excluded:
        return None
    if any(merged.get(name) is not None for name in (*ISSUE_COLUMNS, "created_after", "created_before")):
        return None
    projects = merged["project"] if merged.get("project") is not None else access_for(request.user).visible_ids
    labels = Label.objects.alias(lowered=Lower("name")).filter(lowered__in=[Lower(Value(name)) for name in names])
    if projects is not None:
        labels = labels.filter(project_id__any=projects)
    links: QuerySet = Issue.labels.through.objects.filter(label_id__any=ArraySubquery(labels.order_by().values("id")))
    if len(names) > 1:
        per_issue = links.values("issue_id").annotate(carried=Count("*"))
        links = per_issue.filter(carried=len(names))
    return CountSource(links, newest=False)


def documents_matching(merged: Mapping[str, Any], request: Any) -> DocumentSearch | None:
    """The search the FilterSet's merged values (``search.merge_terms``) make, by the documents of the issues they
    select among those of the projects the caller of ``request`` sees (the FilterSet's queryset is the caller's
    ``selectors.issue_list``); None when some filter needs the issue's own row (status, priority, assignee,
    reporter, updated or resolved dates), when there are no words, or while some issues wait for their document
    (then ``issues_matching`` keeps the search exact)."""
    terms = merged["q"]
    if not terms.word_filter or terms.queued or terms.assignees_excluded or terms.reporters_excluded:
        return None
    if any(merged.get(name) is not None for name in ISSUE_COLUMNS):
        return None
    if any(dates.column != "created_at" for dates in terms.dates):
        return None
    query = SearchQuery(terms.words, config=SEARCH_CONFIG, search_type="websearch")
    documents = IssueSearch.objects.filter(document=query)
    projects = merged["project"] if merged.get("project") is not None else access_for(request.user).visible_ids
    if projects is not None:
        documents = documents.filter(project_id__any=projects)
    labels = label_probes(merged["label"], carried=True) + label_probes(terms.labels_excluded, carried=False)
    documents = documents.filter(*labels)
    for dates in terms.dates:
        documents = documents.filter(dates.condition())
    if merged.get("created_after") is not None:
        documents = documents.filter(created_at__gte=merged["created_after"])
    if merged.get("created_before") is not None:
        documents = documents.filter(created_at__lt=merged["created_before"])
    return DocumentSearch(documents, projects, labels, terms.generations)
