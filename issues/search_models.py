"""The search's own tables: the issues' documents (``IssueSearch``), the issues waiting for one
(``IssueSearchPending``), and the generations that tell a cached search result whether it still holds
(``SearchGeneration``). Apart from ``issues.models`` for its length; re-exported there."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class IssueSearch(models.Model):
    """An issue's full-text document (``SEARCH_DOCUMENT_SQL``: title weighted A, description B), kept by the issue
    table's triggers (``search_*`` in ``Issue.Meta.triggers``) and indexed by GIN. A table of its own: an issue's
    status change is never a HOT update (``updated_at`` is indexed), and would re-insert every word of the issue
    into a GIN index of the issue table; here a document is written only when its text changes."""

    issue = models.OneToOneField("issues.Issue", on_delete=models.CASCADE, primary_key=True, related_name="search")
    document = SearchVectorField()
    # Copies of the issue's project and creation time (neither changes; the update trigger follows one anyway): a
    # word search counts and pages its matches in the caller's projects from this table alone (docs/search.md).
    project_id = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            GinIndex(fields=["document"], name="issue_search_document_gin"),
            # The first page of a common word: walked newest first, each document checked, until the page is full.
            models.Index(fields=["created_at", "issue"], name="issue_search_created_idx"),
        ]

    def __str__(self) -> str:
        return f"search document of #{self.issue_id}"


class IssueSearchPending(models.Model):
    """Issues inserted by a large statement (an import's batch) whose search document is not written yet: the
    issue table's insert trigger queues them in the writer's transaction, ``issues.search_index.index_pending``
    writes their documents after the commit and removes them from here in one statement. Searches match these
    rows by computing their documents on the fly (``search_index.issues_matching``), so a search is exact in every
    snapshot, indexed or not. No foreign key: a queued issue deleted meanwhile is dropped by the indexer.
    """

    issue_id = models.BigIntegerField(primary_key=True)

    def __str__(self) -> str:
        return f"#{self.issue_id} waiting for its search document"


class SearchGeneration(models.Model):
    """How many committed writes changed what a word search finds in a project: its documents (an issue created,
    deleted, or its text changed), its label links, and its labels' names. Bumped by the database in the writer's
    transaction (migration 0021's statement triggers); never decreases, and rows are never deleted, so the sum over
    some projects' rows grows with every such commit and with nothing else: a cached search result stays exact
    while that sum is what it was when the result was read (``issues.search_cache``). Several rows (``slot``) per
    project, as the tallies have, so that writers of one project do not wait for each other's commit."""

    project_id = models.BigIntegerField()
    slot = models.SmallIntegerField()
    generation = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project_id", "slot"], name="search_generation_unique")]

    def __str__(self) -> str:
        return f"project {self.project_id} slot {self.slot}: generation {self.generation}"
