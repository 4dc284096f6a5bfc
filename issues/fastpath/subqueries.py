"""SQL expressions written out by hand: the correlated subqueries of the hot reads, the label filter's count of
distinct lowered names, and ``__any`` (``column = ANY(array)``), the project scope of every read."""

from collections.abc import Sequence
from typing import Any

from django.db.models import CharField, Expression, ForeignKey, IntegerField, Lookup, TextField
from django.db.models.expressions import RawSQL


@ForeignKey.register_lookup
@IntegerField.register_lookup  # the integer keys too (``id__any``)
class AnyOf(Lookup):
    """``project_id__any=[1, 2, 3]``: ``project_id = ANY(%s::bigint[])``, the list sent as one array parameter.

    ``__in`` writes one parameter per value, so a caller who sees 50 projects would run a different statement
    from one who sees 5; with one array parameter every caller runs the same statement, which stays prepared
    (``fastpath.prepared``) and planned once per connection."""

    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        return "%s", [[int(item) for item in value]]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs}::bigint[])", [*lhs_params, *rhs_params]


def _check_separator(separator: str) -> None:
    if "'" in separator or "\\" in separator:
        raise ValueError("the separator is written into the SQL and may not contain quotes or backslashes")


class CorrelatedSubquery(Expression):
    """A scalar subquery written out in SQL around the outer query's issue alias (``{outer}``).

    The same result as ``Subquery(<queryset with OuterRef("pk")>)``, but such a nested queryset is resolved,
    relabelled and compiled by the ORM on every request (more Python time than the query takes, see
    docs/performance.md); this expression compiles to a fixed string. The outer alias is read from the compiler,
    so the expression stays correct when the ORM renames the outer table (inside a subquery, say).
    """

    # Django 5.2's expressions return their parameters as a list (the stubs follow Django 6's tuples).
    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        outer = compiler.quote_name_unless_alias(compiler.query.base_table)
        return "(" + self.sql(connection).format(outer=outer) + ")", []

    def sql(self, connection: Any) -> str:
        """The subquery's SQL, with ``{outer}`` where the outer issue table's alias goes."""
        raise NotImplementedError


class LabelNamesJoined(CorrelatedSubquery):
    """The names of an issue's labels joined by ``separator`` (NULL when it has none), in no order."""

    output_field = TextField()

    def __init__(self, *, separator: str) -> None:
        _check_separator(separator)
        super().__init__()
        self.separator = separator

    def sql(self, connection: Any) -> str:
        from ..models import Issue, Label

        quote = connection.ops.quote_name
        link = quote(Issue.labels.through._meta.db_table)
        return (
            f"SELECT STRING_AGG(l.{quote('name')}, '{self.separator}') FROM {quote(Label._meta.db_table)} l "
            f"INNER JOIN {link} il ON il.{quote('label_id')} = l.{quote('id')} "
            f"WHERE il.{quote('issue_id')} = {{outer}}.{quote('id')}"
        )


class CommentCount(CorrelatedSubquery):
    """The number of an issue's comments."""

    output_field = IntegerField()

    def sql(self, connection: Any) -> str:
        from ..models import Comment

        quote = connection.ops.quote_name
        return (
            f"SELECT COUNT(*) FROM {quote(Comment._meta.db_table)} c "
            f"WHERE c.{quote('issue_id')} = {{outer}}.{quote('id')}"
        )


class IssueTotal(CorrelatedSubquery):
    """The number of issues in the projects ``project_ids`` (all projects when None) as the triggers keep it
    (``IssueTally``), the same in every row. Not correlated: PostgreSQL computes it once per statement (an
    InitPlan), so a page of the list carries its ``count`` without a second statement."""

    output_field = IntegerField()

    def __init__(self, project_ids: Sequence[int] | None = None) -> None:
        super().__init__()
        self.project_ids = None if project_ids is None else [int(pk) for pk in project_ids]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        from ..models import IssueTally

        quote = connection.ops.quote_name
        sql = f"SELECT COALESCE(SUM(t.{quote('issues')}), 0)::bigint FROM {quote(IssueTally._meta.db_table)} t"
        if self.project_ids is None:
            return f"({sql})", []
        return f"({sql} WHERE t.{quote('project_id')} = ANY(%s::bigint[]))", [self.project_ids]


class ProjectKey(CorrelatedSubquery):
    """The key of the issue's project (a primary-key probe per row of a page; no join, so a ``FOR UPDATE`` of
    the issue locks no project row)."""

    output_field = CharField()

    def sql(self, connection: Any) -> str:
        from ..models import Project

        quote = connection.ops.quote_name
        return (
            f"SELECT p.{quote('key')} FROM {quote(Project._meta.db_table)} p "
            f"WHERE p.{quote('id')} = {{outer}}.{quote('project_id')}"
        )


class FirstCommentsJson(CorrelatedSubquery):
    """An issue's first ``limit`` comments (oldest first) with their authors' usernames, as
    JSON text ``[{"id", "author_id", "username", "body", "created_at"}, ...]``, so that the issue detail
    needs one query instead of two."""

    output_field = TextField()

    def __init__(self, *, limit: int) -> None:
        super().__init__()
        self.limit = int(limit)

    def sql(self, connection: Any) -> str:
        from django.contrib.auth import get_user_model

        from ..models import Comment

        quote = connection.ops.quote_name
        comment, user = quote(Comment._meta.db_table), quote(get_user_model()._meta.db_table)
        fields = ", ".join(f"c.{quote(name)}" for name in ("id", "author_id", "body", "created_at"))
        return (
            "SELECT COALESCE(json_agg(json_build_object('id', c.id, 'author_id', c.author_id, "
            "'username', u.username, 'body', c.body, 'created_at', c.created_at) "
            "ORDER BY c.created_at, c.id)::text, '[]') "
            f"FROM (SELECT {fields} FROM {comment} c WHERE c.{quote('issue_id')} = {{outer}}.{quote('id')} "
            f"ORDER BY c.{quote('created_at')}, c.{quote('id')} LIMIT {self.limit}) c "
            f"LEFT JOIN {user} u ON u.{quote('id')} = c.{quote('author_id')}"
        )


class DistinctLowerCount(RawSQL):
    """How many different names ``names`` are once lowered by the database (``lower()``, as the unique index of
    label names compares them): a constant of the statement, so it adds nothing to GROUP BY."""

    def __init__(self, names: Sequence[str]) -> None:
        lowered = " UNION ".join(["SELECT LOWER(%s)"] * len(names))
        super().__init__(f"SELECT COUNT(*) FROM ({lowered}) AS names", list(names), output_field=IntegerField())

    def get_group_by_cols(self) -> list:
        return []
