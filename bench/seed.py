"""The benchmarks' loader: the demo data of ``manage.py seed_demo``, set-based, for 10k to 1M issues.

    DATABASE_URL=postgres://… .venv/bin/python -m bench.seed --issues N --users U [--projects P] [--jobs J] [--reset]
        [--seed S]

Same data, same invariants as ``seed_demo`` (its module docstring lists them; ``tests/test_bench_seed.py``
checks them), written with ``INSERT … SELECT`` over ``generate_series`` in one transaction by default; with
``--jobs 3`` a big load writes the issues first and then the search documents, labels, events and comments from
three connections at once (undone together if one fails), which is how 1,000,000 issues fit in a minute or two.
Every per-issue choice comes from a hash of the issue id (``pg_temp.r(id, k)``; the titles and descriptions,
``issues/management/demo_text.py``'s grammar, from ``pg_temp.t(id, k)``), so the issues, labels, comments and events
are derived independently yet agree with each other. Issue ids are explicit (after the largest existing one) and
the sequence is moved past them. A big load (``BIG_LOAD``) drops the secondary indexes and rebuilds them at the end,
and, as a superuser, skips the per-row foreign-key triggers (``session_replication_role = replica``; the tallies'
and the search documents' triggers fire always). The documents the insert trigger queues (``IssueSearchPending``)
are written by the loader itself (``DOCUMENTS_SQL``), as the indexer would after the commit. PostgreSQL only.

Projects: ``--projects 1`` (the default) puts every issue in the default project, as the figures measured before
projects existed did. ``--projects P`` spreads them over the default project and ``P - 1`` of ``seed_demo``'s
projects (its keys, teams and labels; skewed the same way, ``pg_temp.p(id)``), with one difference: the projects
after the default one are created private here, so that a caller sees exactly the projects it is a member of and
the default one (the benchmark's member of 5 of 20 projects sees 5). Numbers are given per project in id (=
creation) order by ``row_number()`` after the project's current sequence value, and each sequence is then moved
past them: like the ids, this assumes nothing else creates issues while the loader runs.

Settings: ``DJANGO_SETTINGS_MODULE`` (default ``issue_tracker.settings``) and its ``DATABASE_URL``.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from django.db import connection, transaction
from psycopg import sql

BIG_LOAD = 20_000  # from this many issues on (and at least as many as exist), indexes are rebuilt at the end

# Every per-issue choice is pg_temp.r(id, k), a uniform number in [0, 1) hashed from the issue id, so each
# statement can derive what it needs from the issues table and the statements agree with each other.
# ``{issue_t}``-style fields are table identifiers (psycopg.sql); ``%(x)s`` are query parameters.

# The issue's project is the ``p``-th (0-based) of the load's projects: ``pids[p + 1]``, its writers (members and
# maintainers, in id order) ``writers[off[p + 1] + 1 .. off[p + 1] + nw[p + 1]]``, its labels
# ``lids[p * nl + 1 .. p * nl + nl]``. ``{number}`` is the issue's number in its project (``NUMBER_*``).
ISSUES_SQL = """
WITH base AS (
    SELECT g, g + %(offset)s AS id, pg_temp.p(g + %(offset)s) AS p,
           %(now)s::timestamptz - make_interval(secs => %(span)s)
             + make_interval(secs => %(span)s * (g - 0.5 + 0.4 * (pg_temp.r(g + %(offset)s, 0) - 0.5))
                                    / %(n)s) AS created_at,
           make_interval(secs => 3600 + 56 * 86400 * pg_temp.r(g + %(offset)s, 1) ^ 2) AS d,
           pg_temp.r(g + %(offset)s, 2) AS rs
    FROM generate_series(1, %(n)s) AS g
), st AS (
    SELECT b.*,
           CASE WHEN b.created_at + b.d * 1.2 > %(now)s
                THEN CASE WHEN b.rs < 0.6 THEN 'open' ELSE 'in_progress' END
                WHEN b.rs < 0.25 THEN 'open' WHEN b.rs < 0.37 THEN 'in_progress'
                WHEN b.rs < 0.60 THEN 'resolved' ELSE 'closed' END AS status
    FROM base b
)
INSERT INTO {issue_t} (id, project_id, number, title, description, status, priority, assignee_id, reporter_id,
                       version, created_at, updated_at, resolved_at)
SELECT st.id,
       (%(pids)s::bigint[])[st.p + 1],
       {number},
       pg_temp.title(st.id) || ' (#' || st.id || ')',
       pg_temp.description(st.id),
       st.status,
       CASE WHEN pg_temp.r(st.id, 3) < 0.20 THEN 'low' WHEN pg_temp.r(st.id, 3) < 0.70 THEN 'medium'
            WHEN pg_temp.r(st.id, 3) < 0.92 THEN 'high' ELSE 'critical' END,
       CASE WHEN pg_temp.r(st.id, 4) < 0.12 THEN NULL
            ELSE (%(writers)s::bigint[])[(%(off)s::int[])[st.p + 1] + 1
                                         + floor((%(nw)s::int[])[st.p + 1] * pg_temp.r(st.id, 5) ^ 3)::int] END,
       (%(writers)s::bigint[])[(%(off)s::int[])[st.p + 1] + 1
                               + floor((%(nw)s::int[])[st.p + 1] * pg_temp.r(st.id, 6))::int],
       CASE st.status WHEN 'open' THEN 1 WHEN 'in_progress' THEN 2 WHEN 'resolved' THEN 3 ELSE 4 END,
       st.created_at,
       CASE st.status
            WHEN 'open' THEN CASE WHEN pg_temp.ncomments(st.id) = 0 THEN st.created_at
                 ELSE st.created_at + (%(now)s - st.created_at) * 0.5 * pg_temp.r(st.id, 9) END
            WHEN 'in_progress' THEN st.created_at + LEAST(st.d * 0.25, (%(now)s - st.created_at) * 0.5)
            WHEN 'resolved' THEN st.created_at + st.d
            ELSE st.created_at + st.d * 1.1 END,
       CASE WHEN st.status IN ('resolved', 'closed') THEN st.created_at + st.d END
FROM st
{order}
"""

# One project: the numbers follow g, and the rows are written in id order as generate_series makes them (no sort).
NUMBER_ONE_PROJECT = {"number": "(%(bases)s::bigint[])[1] + st.g", "order": ""}
# Several: numbered per project in id order; the rows are still written in id order, so that the table's physical
# order follows creation as in a real tracker (and as in the one-project load).
NUMBER_PER_PROJECT = {
    "number": "(%(bases)s::bigint[])[st.p + 1] + row_number() OVER (PARTITION BY st.p ORDER BY st.id)",
    "order": "ORDER BY st.id",
}

LABELS_SQL = """
INSERT INTO {label_t} (issue_id, label_id)
SELECT i.id,
       (%(lids)s::bigint[])[pg_temp.p(i.id) * %(nl)s + 1 + (floor(%(nl)s * pg_temp.r(i.id, 12) ^ 2)::int + k) %% %(nl)s]
FROM {issue_t} i
CROSS JOIN LATERAL generate_series(0, floor(3.5 * pg_temp.r(i.id, 13))::int - 1) AS k
WHERE i.id > %(offset)s
"""

# The ``created`` event and the status path open → in_progress → resolved → closed (version - 1 steps of it).
EVENTS_SQL = """
INSERT INTO {event_t} (issue_id, type, timestamp, actor_id, source, details)
SELECT i.id, e.type, e.ts, CASE WHEN e.step = 0 THEN i.reporter_id
                                ELSE COALESCE(i.assignee_id, i.reporter_id) END, 'api',
       CASE WHEN e.step = 0 THEN '{{}}'::jsonb ELSE jsonb_build_object('from', e.f, 'to', e.t) END
FROM {issue_t} i
CROSS JOIN LATERAL (VALUES
    (0, 'created', NULL, NULL, i.created_at),
    (1, 'status_changed', 'open', 'in_progress',
        CASE WHEN i.status = 'in_progress' THEN i.updated_at
             ELSE i.created_at + (i.resolved_at - i.created_at) * 0.25 END),
    (2, 'status_changed', 'in_progress', 'resolved', i.resolved_at),
    (3, 'status_changed', 'resolved', 'closed', i.updated_at)
) AS e(step, type, f, t, ts)
WHERE i.id > %(offset)s AND e.step <= i.version - 1
"""

# Comments between created_at and updated_at (the last one at updated_at for open issues, before the last
# status change otherwise), each with its ``commented`` event.
COMMENTS_SQL = """
WITH c AS (
    INSERT INTO {comment_t} (issue_id, author_id, body, created_at)
    SELECT i.id,
           (%(writers)s::bigint[])[(%(off)s::int[])[pg_temp.p(i.id) + 1] + 1
             + floor((%(nw)s::int[])[pg_temp.p(i.id) + 1] * pg_temp.r(i.id * 131 + k, 14) ^ 2)::int],
           (%(comments)s::text[])[1 + floor(pg_temp.r(i.id * 131 + k, 15)
                                          * cardinality(%(comments)s::text[]))::int],
           i.created_at + (i.updated_at - i.created_at) * k::float8
             / (pg_temp.ncomments(i.id) + CASE WHEN i.status = 'open' THEN 0 ELSE 1 END)
    FROM {issue_t} i
    CROSS JOIN LATERAL generate_series(1, pg_temp.ncomments(i.id)) AS k
    WHERE i.id > %(offset)s
    RETURNING id, issue_id, author_id, body, created_at
)
INSERT INTO {event_t} (issue_id, type, timestamp, actor_id, source, details)
SELECT c.issue_id, 'commented', c.created_at, c.author_id, 'api',
       jsonb_build_object('comment_id', c.id, 'excerpt',
           CASE WHEN length(c.body) <= 100 THEN c.body ELSE left(c.body, 99) || '…' END)
FROM c
"""

# The search documents (issue 14) of the load's issues, which the issue table's insert trigger queued (a statement
# of more than ``SEARCH_INLINE_ROWS`` rows does): written here at once, as ``issues.search_index`` would after the
# commit, and taken off the queue.
DOCUMENTS_SQL = """
WITH queued AS (DELETE FROM {pending_t} WHERE issue_id > %(offset)s RETURNING issue_id)
INSERT INTO {search_t} (issue_id, document{copies})
SELECT search_new_rows.id, {document}{copied}
FROM {issue_t} AS search_new_rows JOIN queued ON queued.issue_id = search_new_rows.id
"""

# Each project's number sequence (``issues.models.number_sequence_name``) past the largest number of the load.
NUMBER_SEQUENCES_SQL = """
SELECT setval(format('issues_project_%%s_number_seq', project_id)::regclass, max(number))
FROM {issue_t} WHERE id > %(offset)s GROUP BY project_id
"""

# After a reset, every project's numbers start again at 1 (TRUNCATE leaves these sequences: not the table's).
RESTART_NUMBERS_SQL = """
SELECT setval(format('issues_project_%s_number_seq', id)::regclass, 1, false) FROM issues_project
"""

FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION pg_temp.r(id bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashint8(id * 64 + k + {seed} * 1000003) & 2147483647)::float8 / 2147483648.0 $$;
CREATE OR REPLACE FUNCTION pg_temp.ncomments(id bigint) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN pg_temp.r(id, 10) < {hot_share} THEN {hot_comments}
               ELSE floor(4 * pg_temp.r(id, 11) ^ 2)::int END $$;
CREATE OR REPLACE FUNCTION pg_temp.p(id bigint) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT LEAST(floor({projects} * pg_temp.r(id, 16) ^ 1.5)::int, {projects} - 1) $$;
"""

# The titles and descriptions: ``issues/management/demo_text.py``'s grammar, its draw ``u(k)`` being
# ``pg_temp.t(id, k)``, hashed apart from ``pg_temp.r``'s numbers (ids up to 6.8e9). Each function is one
# immutable expression, which PostgreSQL inlines into the INSERT: a call per row costs 10 to 30 times as much, and a
# function is not inlined when it holds a stable one (concat_ws, ``text || int``) or uses an argument more than once
# that is more than a few operators (hence the sentence count drawn again in each CASE, not passed in).
TEXT_FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION pg_temp.t(id bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashint8(id * 1024 + k + {seed} * 1000003 + 7000000000000) & 2147483647)::float8 / 2147483648.0 $$;
CREATE OR REPLACE FUNCTION pg_temp.pick(words text[], u float8) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT words[floor((cardinality(words) + 1)::float8 ^ u)::int] $$;
CREATE OR REPLACE FUNCTION pg_temp.title(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.pick({title_subjects}, pg_temp.t(id, {k_subject})) || ' '
          || pg_temp.pick({symptoms}, pg_temp.t(id, {k_symptom}))
          || CASE WHEN pg_temp.t(id, {k_has_context}) < {context_share}
                  THEN ' ' || pg_temp.pick({contexts}, pg_temp.t(id, {k_context})) ELSE '' END
          || CASE WHEN pg_temp.t(id, {k_tail_kind}) < {component_share}
                  THEN ' in ' || pg_temp.pick({components}, pg_temp.t(id, {k_tail}))
                  WHEN pg_temp.t(id, {k_tail_kind}) < {tail_share}
                  THEN ' (' || {code_tail} || ')' ELSE '' END $$;
CREATE OR REPLACE FUNCTION pg_temp.sentence(id bigint, j int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT {filled} $$;
CREATE OR REPLACE FUNCTION pg_temp.nsentences(v float8) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN v < 0.05 THEN 0 WHEN v < 0.45 THEN 1 WHEN v < 0.75 THEN 2 WHEN v < 0.93 THEN 3
               ELSE 4 + floor((v - 0.93) * 5 / 0.07)::int END $$;
CREATE OR REPLACE FUNCTION pg_temp.description(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT {sentences} $$
"""


def text_functions(seed: int) -> str:
    """``TEXT_FUNCTIONS_SQL`` with demo_text's lists and constants: the same choices from the same draws."""
    from issues.management import demo_text as text

    def words(values: list[str]) -> sql.Composable:
        return sql.SQL("{}::text[]").format(sql.Literal(values))

    def draw(k: int | str) -> sql.Composable:
        return sql.SQL("pg_temp.t(id, {})").format(sql.SQL(str(k)))

    def code(u: sql.Composable) -> sql.Composable:  # demo_text.error_code
        return sql.SQL("'E' || ({} + floor(({} + 1)::float8 ^ {})::int)::text").format(
            sql.Literal(text.CODE_BASE - 1), sql.Literal(text.CODES), u
        )

    fills = {
        "{s}": lambda u: sql.SQL("pg_temp.pick({}, {})").format(words(text.SUBJECTS), u),
        "{y}": lambda u: sql.SQL("pg_temp.pick({}, {})").format(words(text.SYMPTOMS), u),
        "{c}": lambda u: sql.SQL("pg_temp.pick({}, {})").format(words(text.CONTEXTS), u),
        "{m}": lambda u: sql.SQL("pg_temp.pick({}, {})").format(words(text.COMPONENTS), u),
        "{e}": code,
        "{v}": lambda u: sql.SQL("pg_temp.pick({}, {})").format(words(text.RELEASES), u),
        "{n}": lambda u: sql.SQL("(2 + floor(200 * {} ^ 3)::int)::text").format(u),
    }
    assert list(fills) == [placeholder for placeholder, _ in text.FILLERS]
    filled: sql.Composable = sql.SQL("pg_temp.pick({}, {})").format(
        words(text.SENTENCES), draw(f"{text.K_SENTENCE} * j")
    )
    for offset, placeholder in enumerate(fills, start=1):
        u = draw(f"{text.K_SENTENCE} * j + {offset}")
        filled = sql.SQL("replace({}, {}, {})").format(filled, sql.Literal(placeholder), fills[placeholder](u))
    sentences = sql.SQL(" || ").join(
        sql.SQL("CASE WHEN pg_temp.nsentences({v}) >= {j} THEN {space}pg_temp.sentence(id, {j}) ELSE '' END").format(
            v=draw(text.K_SENTENCES), j=sql.Literal(j), space=sql.SQL("' ' || " if j > 1 else "")
        )
        for j in range(1, text.MAX_SENTENCES + 1)
    )
    return compose(
        TEXT_FUNCTIONS_SQL,
        seed=seed,
        title_subjects=words([text.capitalized(subject) for subject in text.SUBJECTS]),
        symptoms=words(text.SYMPTOMS),
        contexts=words(text.CONTEXTS),
        components=words(text.COMPONENTS),
        code_tail=code(draw(text.K_TAIL)),
        k_subject=text.K_SUBJECT,
        k_symptom=text.K_SYMPTOM,
        k_has_context=text.K_HAS_CONTEXT,
        k_context=text.K_CONTEXT,
        k_tail_kind=text.K_TAIL_KIND,
        k_tail=text.K_TAIL,
        context_share=text.CONTEXT_SHARE,
        component_share=text.COMPONENT_TAIL_SHARE,
        tail_share=text.COMPONENT_TAIL_SHARE + text.CODE_TAIL_SHARE,
        filled=filled,
        sentences=sentences,
    )


def compose(template: str, *args: sql.Composable, **fields: Any) -> str:
    """``template`` with its ``{}`` fields filled: strings as quoted identifiers, numbers as literals."""
    values = {
        k: v if isinstance(v, sql.Composable) else sql.Identifier(v) if isinstance(v, str) else sql.Literal(v)
        for k, v in fields.items()
    }
    return sql.SQL(template).format(*args, **values).as_string()


class _Timed:
    """A cursor wrapper that reports each statement's duration (``--verbose``)."""

    def __init__(self, cursor: Any, out: TextIO | None) -> None:
        self.cursor, self.out = cursor, out

    def execute(self, statement: str, params: Any = None) -> None:
        started = time.monotonic()
        self.cursor.execute(statement, params)
        if self.out is not None:
            first = " ".join(statement.split())[:70]
            print(f"  {time.monotonic() - started:6.2f}s  {self.cursor.rowcount:>9}  {first}", file=self.out)

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


class _Plan:
    """The load: one transaction (default), or the issues first and then N connections at once."""

    def __init__(
        self, params: dict[str, Any], tables: dict[str, str], functions: str, rebuild_indexes: bool, out: TextIO | None
    ) -> None:
        self.params, self.tables, self.functions = params, tables, functions
        self.offset, self.rebuild_indexes, self.out = params["offset"], rebuild_indexes, out
        numbering = NUMBER_ONE_PROJECT if len(params["pids"]) == 1 else NUMBER_PER_PROJECT
        self.fields: dict[str, Any] = {**tables, **{k: sql.SQL(v) for k, v in numbering.items()}}
        self.documents = "search_t" in tables
        if self.documents:
            from issues.models import SEARCH_DOCUMENT_SQL

            self.fields["document"] = sql.SQL(SEARCH_DOCUMENT_SQL)
            # Since migration 0020 a document also keeps its issue's project and creation time (IssueSearch); a
            # tree from before that (a benchmark's BEFORE) has no such columns.
            copies = {f.name for f in search_models()[0]._meta.get_fields()} >= {"project_id", "created_at"}  # type: ignore[index]
            self.fields["copies"] = sql.SQL(", project_id, created_at" if copies else "")
            self.fields["copied"] = sql.SQL(
                ", search_new_rows.project_id, search_new_rows.created_at" if copies else ""
            )

    def cursor(self, raw: Any) -> _Timed:
        return _Timed(raw, self.out)

    def prepare(self, cursor: _Timed) -> None:
        """Session settings and helper functions, for this transaction / connection (not timed)."""
        raw = cursor.cursor
        # The settings' statement and lock limits do not apply to the load (a 1M-issue statement runs long).
        # Foreign keys are checked per statement, not at commit: CREATE INDEX refuses a table with pending checks.
        raw.execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL jit = off; "
            "SET LOCAL work_mem = '64MB'; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; "
            "SET CONSTRAINTS ALL IMMEDIATE"
        )
        # Bulk-load habit: a superuser skips the per-row foreign-key triggers for this transaction (every id
        # written here comes from rows just read or inserted).
        raw.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if raw.fetchone()[0]:
            raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute(self.functions)

    def drop_indexes(self, cursor: _Timed) -> list[str]:
        """Drop the secondary indexes (not those behind constraints); a big load rebuilds them once at the end."""
        if not self.rebuild_indexes:
            return []
        cursor.cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)
            """,
            [list(self.tables.values())],
        )
        dropped = []
        for name, definition in cursor.cursor.fetchall():
            cursor.execute(compose("DROP INDEX {name}", name=name))
            dropped.append(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        return dropped

    def run(self, cursor: _Timed, template: str) -> int:
        cursor.execute(compose(template, **self.fields), self.params)
        return cursor.rowcount

    def write_issues(self, cursor: _Timed) -> int:
        """The issues, then each project's number sequence moved past the numbers they took (in the same
        transaction; ``setval`` is not undone by a rollback, which only leaves a gap in the numbers)."""
        written = self.run(cursor, ISSUES_SQL)
        cursor.execute(compose(NUMBER_SEQUENCES_SQL, **self.tables), self.params)
        return written

    def set_sequence(self, cursor: _Timed) -> None:
        issue_t = self.tables["issue_t"]
        setval = "SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST((SELECT MAX(id) FROM {t}), 1))"
        cursor.execute(compose(setval, t=issue_t), [compose("{t}", t=issue_t)])

    def run_in_this_transaction(self) -> dict[str, int]:
        with connection.cursor() as raw:
            cursor = self.cursor(raw)
            self.prepare(cursor)
            dropped = self.drop_indexes(cursor)
            counts = {"issues": self.write_issues(cursor), "labels": self.run(cursor, LABELS_SQL)}
            counts["events"] = self.run(cursor, EVENTS_SQL)
            counts["comments"] = self.run(cursor, COMMENTS_SQL)
            counts["events"] += counts["comments"]
            if self.documents:
                self.run(cursor, DOCUMENTS_SQL)
            for definition in dropped:
                cursor.execute(definition)
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            self.set_sequence(cursor)
        return counts

    def in_own_connection(self, statements: list[str], templates: bool = True) -> list[int]:
        """Run statements in one transaction of this thread's own connection, then close it."""
        try:
            with transaction.atomic(), connection.cursor() as raw:
                cursor = self.cursor(raw)
                self.prepare(cursor)
                if templates:
                    return [self.run(cursor, template) for template in statements]
                for statement in statements:
                    cursor.execute(statement)
                return []
        finally:
            connection.close()

    def run_in_parallel(self, jobs: int) -> dict[str, int]:
        with transaction.atomic(), connection.cursor() as raw:
            cursor = self.cursor(raw)
            self.prepare(cursor)
            dropped = self.drop_indexes(cursor)
            counts = {"issues": self.write_issues(cursor)}
        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                # The documents first, the longest part (``to_tsvector``); the other parts take the free connections.
                documents = pool.submit(self.in_own_connection, [DOCUMENTS_SQL]) if self.documents else None
                labels, events, comments = (
                    pool.submit(self.in_own_connection, [t]) for t in (LABELS_SQL, EVENTS_SQL, COMMENTS_SQL)
                )
                counts["labels"] = labels.result()[0]
                counts["comments"] = comments.result()[0]
                counts["events"] = events.result()[0] + counts["comments"]
                if documents is not None:
                    documents.result()
        except BaseException:
            self.undo(dropped)
            raise
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # CREATE INDEX builds may run side by side
            list(pool.map(lambda definition: self.in_own_connection([definition], templates=False), dropped))
        with connection.cursor() as raw:
            self.set_sequence(self.cursor(raw))
        return counts

    def undo(self, dropped: list[str]) -> None:
        """After a failed parallel load: remove what was added, put the indexes back."""
        t = self.tables
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks when the indexes are built
            issue_tables = [t["event_t"], t["comment_t"], t["label_t"]]
            if self.documents:
                issue_tables += [t["search_t"], t["pending_t"]]
            for table in issue_tables:
                cursor.execute(compose("DELETE FROM {t} WHERE issue_id > %s", t=table), [self.offset])
            cursor.execute(compose("DELETE FROM {t} WHERE id > %s", t=t["issue_t"]), [self.offset])
            for definition in dropped:
                cursor.execute(definition)


def load(
    issues: int,
    users: int,
    *,
    projects: int = 1,
    jobs: int = 1,
    reset: bool = False,
    seed: int = 1,
    verbose: TextIO | None = None,
) -> dict[str, int]:
    """Add ``issues`` issues (with labels, comments, events) for ``users`` demo users, spread over ``projects``
    projects (the default one first); the counts written."""
    from django.db.models import Max
    from django.utils import timezone

    from issues.management.commands import seed_demo as demo
    from issues.models import Comment, Issue, IssueEvent

    if issues < 0 or users < 1 or projects < 1:
        raise ValueError("issues must be >= 0, users >= 1 and projects >= 1")
    tables = {
        "issue_t": Issue._meta.db_table,
        "label_t": Issue.labels.through._meta.db_table,
        "comment_t": Comment._meta.db_table,
        "event_t": IssueEvent._meta.db_table,
    }
    documents = search_models()
    if documents is not None:  # their GIN index is rebuilt at the end of a big load, as the others
        tables["search_t"], tables["pending_t"] = (model._meta.db_table for model in documents)
    # --jobs N > 1: after the issues, the labels, events and comments are written by N connections at once
    # (one transaction each, undone together if one fails), and the indexes rebuilt in parallel. Not possible
    # inside an outer transaction (other connections could not see the issues).
    parallel = jobs > 1 and not connection.in_atomic_block and issues >= BIG_LOAD
    with transaction.atomic():
        if reset:
            names = sql.SQL(", ").join(map(sql.Identifier, tables.values()))
            with connection.cursor() as cursor:
                cursor.execute(compose("TRUNCATE {} RESTART IDENTITY", names))
                cursor.execute(RESTART_NUMBERS_SQL)
        user_ids = demo.ensure_users(users)
        targets = ensure_projects(projects, user_ids)
        if issues and not targets:
            raise ValueError("no demo user may write in any of the projects")
        offset = Issue.objects.aggregate(m=Max("id"))["m"] or 0
        params = {
            "n": issues,
            "offset": offset,
            **project_params(targets),
            "now": timezone.now().replace(microsecond=0),
            "span": demo.SPAN_SECONDS,
            "comments": demo.COMMENTS,
        }
        functions = compose(
            FUNCTIONS_SQL,
            seed=seed,
            hot_share=demo.HOT_ISSUE_SHARE,
            hot_comments=demo.HOT_COMMENTS,
            projects=max(1, len(targets)),
        ) + text_functions(seed)
        rebuild_indexes = issues >= BIG_LOAD and issues >= (Issue.objects.count() if offset else 0)
        plan = _Plan(params, tables, functions, rebuild_indexes, verbose)
        if not parallel:
            counts = plan.run_in_this_transaction()
    if parallel:
        counts = plan.run_in_parallel(jobs)
    # Fresh statistics for the planner, and (outside a transaction) the visibility map that index-only scans
    # such as the list's COUNT rely on.
    command = "ANALYZE {t}" if connection.in_atomic_block else "VACUUM (ANALYZE) {t}"
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # back to the settings' limit below
        for table in tables.values():
            cursor.execute(compose(command, t=table))
        # And the small tables written through the ORM (labels, projects, the tallies): autovacuum would analyse
        # them on a real server, but not at once (and this machine's PostgreSQL runs without it): unanalysed, the
        # label filter's count hashed every carrier of the label at 1M (2-3 s instead of 40-70 ms).
        cursor.execute("ANALYZE")
        cursor.execute("RESET statement_timeout")
    counts["users"] = len(user_ids)
    counts["projects"] = len(targets)
    return counts


def search_models() -> tuple[Any, Any] | None:
    """``IssueSearch`` and ``IssueSearchPending`` (issue 14), or None with the code from before them: a benchmark
    loads that code's database with this loader too, so that both are measured on the same data."""
    from issues import models

    search, pending = getattr(models, "IssueSearch", None), getattr(models, "IssueSearchPending", None)
    return None if search is None or pending is None else (search, pending)


def ensure_projects(n_projects: int, user_ids: list[int]) -> list[Any]:
    """``seed_demo``'s projects (the default one and ``n_projects - 1`` more, with their teams and labels), the ones
    after the default one created private (an existing project stays as it is). Returns those where a demo user
    may write, in creation order (``seed_demo.DemoProject``: id, key, writers, label ids)."""
    from issues.management.commands import seed_demo as demo
    from issues.models import Project, Visibility

    for key, name, _visibility in demo.project_specs(n_projects):
        Project.objects.get_or_create(key=key, defaults={"name": name, "visibility": Visibility.PRIVATE})
    return sorted(demo.ensure_projects(n_projects, user_ids), key=lambda project: project.pk)


def project_params(targets: list[Any]) -> dict[str, Any]:
    """The statements' parameters that describe the projects: ids, writers (one array, with each project's offset
    and length), labels (the same number per project, one array) and the number each project's issues follow."""
    from issues.management.commands import seed_demo as demo
    from issues.models import number_sequence_name

    writers: list[int] = []
    offsets: list[int] = []
    lengths: list[int] = []
    labels: list[int] = []
    for project in targets:
        offsets.append(len(writers))
        lengths.append(len(project.writers))
        writers += project.writers
        assert len(project.label_ids) == len(demo.LABELS), project.key
        labels += project.label_ids
    bases = {}
    if targets:  # the last number each sequence gave (none yet: 0)
        reads = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}, CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {}").format(
                sql.Literal(project.pk), sql.Identifier(number_sequence_name(project.pk))
            )
            for project in targets
        )
        with connection.cursor() as cursor:
            cursor.execute(reads.as_string())
            bases = dict(cursor.fetchall())
    return {
        "pids": [project.pk for project in targets],
        "writers": writers,
        "off": offsets,
        "nw": lengths,
        "lids": labels,
        "nl": len(demo.LABELS),
        "bases": [bases[project.pk] for project in targets],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, required=True, help="number of issues to add")
    parser.add_argument("--users", type=int, required=True, help="number of demo users")
    parser.add_argument(
        "--projects",
        type=int,
        default=1,
        help="number of projects, the default one first (default 1: every issue in the default project)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="connections writing at once for big loads (default 1)")
    parser.add_argument(
        "--reset", action="store_true", help="delete every issue, comment and event first (numbers start again at 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the pseudo-random choices (default 1)")
    parser.add_argument("--verbose", action="store_true", help="print each statement's duration")
    args = parser.parse_args(argv)
    if args.issues < 0 or args.users < 1 or args.projects < 1:
        parser.error("--issues must be >= 0, --users >= 1 and --projects >= 1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")
    import django

    django.setup()
    if connection.vendor != "postgresql":
        sys.exit(f"bench.seed needs PostgreSQL (DATABASE_URL); this database is {connection.vendor}.")
    started = time.monotonic()
    counts = load(
        args.issues,
        args.users,
        projects=args.projects,
        jobs=args.jobs,
        reset=args.reset,
        seed=args.seed,
        verbose=sys.stdout if args.verbose else None,
    )
    print(
        f"Seeded {counts['issues']} issues, {counts['comments']} comments, {counts['events']} events, "
        f"{counts['labels']} issue labels, {counts['projects']} projects, {counts['users']} users "
        f"in {time.monotonic() - started:.1f}s."
    )


if __name__ == "__main__":
    main()
