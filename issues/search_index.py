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
from typing import Any

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection, connections, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce

from .models import SEARCH_CONFIG, SEARCH_DOCUMENT_SQL, Issue, IssueSearch, IssueSearchPending

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
    SELECT search_new_rows.id, search_new_rows.title, search_new_rows.description
    FROM issues_issue AS search_new_rows JOIN taken ON taken.issue_id = search_new_rows.id
    FOR SHARE OF search_new_rows
), written AS (
    INSERT INTO issues_issuesearch (issue_id, document)
    SELECT search_new_rows.id, {SEARCH_DOCUMENT_SQL} FROM texts AS search_new_rows
    ON CONFLICT (issue_id) DO UPDATE SET document = EXCLUDED.document
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
