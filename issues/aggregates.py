"""Database functions the ORM lacks on both backends."""

from typing import Any

from django.db.models import Aggregate, TextField


class ConcatAll(Aggregate):
    """All values of a group joined by ``separator``: ``string_agg`` on PostgreSQL, ``group_concat`` on SQLite."""

    function = "STRING_AGG"
    output_field = TextField()

    def __init__(self, expression: Any, *, separator: str, **extra: Any) -> None:
        if "'" in separator or "\\" in separator:
            raise ValueError("the separator is written into the SQL and may not contain quotes or backslashes")
        super().__init__(expression, **extra)
        self.template = f"%(function)s(%(expressions)s, '{separator}')"

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)
