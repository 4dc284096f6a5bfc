"""The issue list's Django paginator: the kept total for the unfiltered list's count, and its first pages read with
that count by one prepared statement (see ``selectors.issue_list_page``); the kept facet counts for the count of a
list filtered by project, status, priority and assignee only (``selectors.issue_facet_total``)."""

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from . import selectors
from .access import Access
from .models import Issue
from .search import Facets
from .search_index import CountSource

# Pages 1..PREPARED_PAGES of the whole list are read with their count by one prepared statement per page's
# bounds: the first pages, which clients come back to. A few page sizes times these pages stay well within
# the statements kept compiled (selectors._ISSUE_LIST_PAGES) and prepared (psycopg keeps 100 per connection).
# A deeper page is checked against the count first and read by the ORM, so that no page number, however large,
# reaches the database before it is known to exist.
PREPARED_PAGES = 10


class IssueListPaginator(Paginator):
    """Django's paginator, told by the issue list what it pages: every issue the caller sees, or those of some of
    its projects (``unfiltered``: the count is the kept total of the caller's projects, or of ``count_projects``),
    in the default order too (``whole_list``: pages 1..PREPARED_PAGES are read with that count by one prepared
    statement), or those that ``facets`` describes exactly (the count is the sum of the kept facet counts; None
    when some other filter is active: then ``COUNT(*)``), and with ``facet_pages`` (the list's parameters were only
    those filters: ``issues.facet_params``) pages 1..PREPARED_PAGES are read by one prepared statement too
    (``selectors.issue_facet_page``); a word search its documents can answer is counted by them, and its first page
    newest first is picked by them with the count, in one statement (``counted_by``). Any other page of issues is
    read through ``selectors.issue_page``."""

    def __init__(
        self,
        *args: Any,
        access: Access,
        unfiltered: bool = False,
        whole_list: bool = False,
        count_projects: list[int] | None = None,
        facets: Facets | None = None,
        facet_pages: bool = False,
        counted_by: CountSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.access = access
        self.count_projects = count_projects
        self.facets = facets
        self.facet_pages = facet_pages and facets is not None
        self.counted_by = counted_by
        self.unfiltered = unfiltered
        self.whole_list = whole_list

    @cached_property
    def count(self) -> int:
        if self.unfiltered:
            return selectors.issue_total(self.access, self.count_projects)
        if self.facets is not None:
            return selectors.issue_facet_total(self.access, self.facets)
        if self.counted_by is not None:
            return self.counted_by.count()
        return super().count

    def page(self, number: Any) -> Any:
        object_list: Any = self.object_list
        if getattr(object_list, "model", None) is not Issue:
            return super().page(number)
        rows: Any = None
        digits = str(number)
        # (the length first: int() refuses strings of more than 4,300 digits with a ValueError)
        prepared = (
            (self.whole_list or self.facet_pages) and self.orphans == 0 and digits.isdecimal() and len(digits) <= 4
        )
        if prepared and self.facet_pages and 1 <= int(digits) <= PREPARED_PAGES:
            number = self.validate_number(number)  # the kept facet count first: no read of a page past the end
            bottom = (number - 1) * self.per_page
            assert self.facets is not None  # (facet_pages says so)
            rows = selectors.issue_facet_page(self.access, self.facets, bottom, bottom + self.per_page)
        elif prepared and 1 <= int(digits) <= PREPARED_PAGES:
            bottom = (int(digits) - 1) * self.per_page
            read = selectors.issue_list_page(self.access, bottom, bottom + self.per_page)
            if read is not None:
                rows, self.count = read  # the count read with the rows replaces the cached property's
                self.__dict__.pop("num_pages", None)  # computed from the old count for ?page=last
        first_ids = None  # a word search's first page, newest first: its ids are read with its count
        if digits == "1" and self.counted_by is not None and self.counted_by.newest:
            self.count, first_ids = self.counted_by.count_and_first(self.per_page + self.orphans)
            self.__dict__.pop("num_pages", None)
        number = self.validate_number(number)  # a page past the end is refused as Django refuses it
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if rows is None and first_ids is not None:
            rows = selectors.issues_by_ids(self.access, first_ids[:top])
        if rows is None:
            rows = selectors.issue_page(object_list, bottom, top)
        return self._get_page(rows, number, self)  # type: ignore[attr-defined]  # Django's page factory
