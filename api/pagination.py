"""Pagination of lists.

- Page numbers (default): ``page`` (1-based) and ``page_size`` (default 20, clamped to 1..100), with ``count``.
  A view may choose the Django paginator that pages its queryset (``view.get_django_paginator_class()``).
- Keyset (``?pagination=keyset``, as in GitLab's API): opaque ``cursor`` links, newest first, no ``count``.
  Its cost does not grow with the table, because it needs no ``COUNT(*)`` and no ``OFFSET``.
"""

from typing import Any

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        """Pages with the view's own Django paginator when it names one (``get_django_paginator_class``)."""
        if view is not None and hasattr(view, "get_django_paginator_class"):
            self.django_paginator_class = view.get_django_paginator_class()
        return super().paginate_queryset(queryset, request, view)

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
