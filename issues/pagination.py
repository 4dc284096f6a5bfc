"""Pagination of lists.

- Page numbers (default): ``page`` (1-based) and ``page_size`` (default 20, clamped to 1..100), with ``count``.
- Keyset (``?pagination=keyset``, as in GitLab's API): opaque ``cursor`` links, newest first, no ``count``.
  Its cost does not grow with the table, because it needs no ``COUNT(*)`` and no ``OFFSET``.
"""

from typing import Any

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework import pagination

from . import selectors
from .models import Issue


class CountingPaginator(Paginator):
    """Django's paginator, counting issues with ``selectors.issue_count`` (the kept total for the unfiltered list)."""

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        if getattr(object_list, "model", None) is Issue:
            return selectors.issue_count(object_list)
        return super().count

    def page(self, number: Any) -> Any:
        """Django's page, except that a deeper page of issues is read through ``selectors.issue_page``."""
        object_list: Any = self.object_list
        if getattr(object_list, "model", None) is not Issue:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(selectors.issue_page(object_list, bottom, top), number, self)


class PageNumberPagination(pagination.PageNumberPagination):
    django_paginator_class = CountingPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """The documented list shape; ``count`` is absent only in keyset mode (``?pagination=keyset``)."""
        response = super().get_paginated_response_schema(schema)
        response["required"] = [name for name in response.get("required", []) if name != "count"]
        return response


class KeysetPagination(pagination.CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-id")
