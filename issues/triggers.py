"""The database triggers of the issue table (``Issue.Meta.triggers``, django-pgtrigger): the number's default, the
frozen project and number, and what they keep: the issue tally and the facet tallies (``IssueTally``,
``IssueFacetTally``, ``IssueStatusTally``), and the search documents (``IssueSearch``, ``IssueSearchPending``). Kept
apart from the models for their length; a change to any body here needs a migration (``makemigrations`` notices:
pgtrigger hashes them) that repeats the ``ENABLE ALWAYS`` of the triggers it recreates.
"""

import pgtrigger

# The text search configuration and the weighted document of an issue: the title (A) ranks above the
# description (B). Written by the issue table's triggers into ``IssueSearch.document``; ``issues.search`` queries
# it with the same configuration. ``search_new_rows`` is the insert trigger's transition table (the update
# trigger reads ``NEW.`` instead).
SEARCH_CONFIG = "english"
# An INSERT statement of at most this many rows writes their documents itself; a larger one queues them
# (``IssueSearchPending``): computing a document costs about as much as the rest of an imported row's write.
SEARCH_INLINE_ROWS = 100
SEARCH_DOCUMENT_SQL = (
    f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(search_new_rows.title, '')), 'A')"
    f" || setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, coalesce(search_new_rows.description, '')), 'B')"
)

# The issue tally (``IssueTally``): each INSERT or DELETE statement (a COPY of 5,000 rows included) adds
# its row counts per project, read from its transition table, to one slot per project, in its own
# transaction; TRUNCATE clears the tally. The slot's row stays locked until the writer commits, and an
# import is one long transaction: so a writer takes the first slot of the project, from its backend's
# own (``pg_backend_pid() % 64``) on, that no open transaction holds (a try-lock on an advisory key per
# (project, slot), held to the end of the transaction, as the row lock is), and waits only when all 64 are
# held (64 open writes in one project). ENABLE ALWAYS (migrations 0009, 0010, 0013) makes them fire also
# under session_replication_role = replica (bench/seed.py): pgtrigger has no option for it and creates
# triggers as plain ENABLE, so a migration that recreates one (a changed body) must repeat that ALTER
# (tests/issues/test_issue_tally.py checks it). Never pgtrigger.ignore() them: the count would drift. An
# issue never changes project (``frozen_project_number``), so UPDATEs leave the tally alone.
TALLY_UPSERT = """
            LOOP
                FETCH deltas INTO project, delta;
                EXIT WHEN NOT FOUND;
                chosen := pg_backend_pid() % 64;
                FOR step IN 0..63 LOOP
                    IF pg_try_advisory_xact_lock(hashtextextended(
                        'issues_issuetally:' || project || ':' || ((pg_backend_pid() + step) % 64), 0)) THEN
                        chosen := (pg_backend_pid() + step) % 64;
                        EXIT;
                    END IF;
                END LOOP;
                INSERT INTO issues_issuetally AS t (project_id, slot, issues) VALUES (project, chosen, delta)
                ON CONFLICT (project_id, slot) DO UPDATE SET issues = t.issues + EXCLUDED.issues;
            END LOOP;
            RETURN NULL;"""
TALLY_DECLARE = [("deltas", "refcursor"), ("project", "bigint"), ("delta", "bigint"), ("chosen", "int")]
# The facet tallies (``IssueFacetTally`` by assignee, ``IssueStatusTally`` without): the deltas of a statement, one
# row per (project, status, priority, assignee) that changed, are read into arrays; a writer then takes, per project,
# the lowest slot (from 0, not from its backend's own: pooled connections come and go with new pids, and starting
# from the pid gave each combination a row in every slot over time) that no open transaction holds, under one
# advisory key per (project, slot) for both tallies; then one INSERT ... ON CONFLICT per tally adds all the deltas,
# in the order of its unique key (two writers that share a slot, when all 64 are held, lock rows in one order).
# Nothing moved (a PATCH of the title): no lock taken, nothing written.
FACET_UPSERT = """
            IF projects IS NULL THEN
                RETURN NULL;
            END IF;
            FOR project IN SELECT DISTINCT p FROM unnest(projects) AS p ORDER BY 1 LOOP
                chosen := 0;
                FOR step IN 0..63 LOOP
                    IF pg_try_advisory_xact_lock(hashtextextended(
                        'issues_issuefacettally:' || project || ':' || step, 0)) THEN
                        chosen := step;
                        EXIT;
                    END IF;
                END LOOP;
                slot_projects := slot_projects || project;
                slots := slots || chosen;
            END LOOP;
            WITH slotted AS (
                SELECT d.*, s.slot
                FROM unnest(projects, statuses, priorities, assignees, deltas)
                    AS d(project_id, status, priority, who, n)
                JOIN unnest(slot_projects, slots) AS s(project_id, slot) USING (project_id)
            ), by_assignee AS (
                INSERT INTO issues_issuefacettally AS t (assignee_id, project_id, status, priority, slot, issues)
                SELECT who, project_id, status, priority, slot, n FROM slotted ORDER BY 1, 2, 3, 4
                ON CONFLICT (assignee_id, project_id, status, priority, slot)
                DO UPDATE SET issues = t.issues + EXCLUDED.issues
            )
            INSERT INTO issues_issuestatustally AS t (project_id, status, priority, slot, issues)
            SELECT project_id, status, priority, slot, sum(n) FROM slotted
            GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (project_id, status, priority, slot) DO UPDATE SET issues = t.issues + EXCLUDED.issues;
            RETURN NULL;"""
FACET_DECLARE = [
    ("projects", "bigint[]"),
    ("statuses", "text[]"),
    ("priorities", "text[]"),
    ("assignees", "bigint[]"),
    ("deltas", "bigint[]"),
    ("project", "bigint"),
    ("chosen", "int"),
    ("slot_projects", "bigint[] := '{}'"),
    ("slots", "int[] := '{}'"),
]


def facet_moves(deltas: str) -> str:
    """The facet triggers' body: ``deltas`` selects (project_id, status, priority, who, delta) rows, who 0 for
    unassigned."""
    return (
        "SELECT array_agg(project_id), array_agg(status), array_agg(priority), array_agg(who), array_agg(delta)"
        f" INTO projects, statuses, priorities, assignees, deltas FROM ({deltas}) AS moved;" + FACET_UPSERT
    )


ISSUE_TRIGGERS = [
    pgtrigger.Trigger(
        name="tally_insert",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Insert,
        referencing=pgtrigger.Referencing(new="tally_new_rows"),
        declare=TALLY_DECLARE,
        func="OPEN deltas FOR SELECT project_id, count(*) FROM tally_new_rows GROUP BY project_id;" + TALLY_UPSERT,
    ),
    pgtrigger.Trigger(
        name="tally_delete",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Delete,
        referencing=pgtrigger.Referencing(old="tally_old_rows"),
        declare=TALLY_DECLARE,
        func="OPEN deltas FOR SELECT project_id, -count(*) FROM tally_old_rows GROUP BY project_id;" + TALLY_UPSERT,
    ),
    pgtrigger.Trigger(
        name="tally_truncate",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Truncate,
        func="DELETE FROM issues_issuetally; RETURN NULL;",
    ),
    # A row inserted without a number (a fixture, a bulk_create) takes the next one of its project.
    pgtrigger.Trigger(
        name="number_default",
        level=pgtrigger.Row,
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        condition=pgtrigger.Q(new__number__isnull=True),
        func="NEW.number := nextval(('issues_project_' || NEW.project_id || '_number_seq')::regclass); RETURN NEW;",
    ),
    pgtrigger.ReadOnly(name="frozen_project_number", fields=["project", "number"]),
    # The facet tallies (FACET_UPSERT): an UPDATE moves the counts of the rows whose status, priority or assignee
    # changed (nothing for a PATCH of the title alone: the sums cancel out).
    pgtrigger.Trigger(
        name="facet_insert",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Insert,
        referencing=pgtrigger.Referencing(new="facet_new_rows"),
        declare=FACET_DECLARE,
        func=facet_moves(
            "SELECT project_id, status, priority, coalesce(assignee_id, 0) AS who, count(*) AS delta"
            " FROM facet_new_rows GROUP BY 1, 2, 3, 4"
        ),
    ),
    pgtrigger.Trigger(
        name="facet_delete",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Delete,
        referencing=pgtrigger.Referencing(old="facet_old_rows"),
        declare=FACET_DECLARE,
        func=facet_moves(
            "SELECT project_id, status, priority, coalesce(assignee_id, 0) AS who, -count(*) AS delta"
            " FROM facet_old_rows GROUP BY 1, 2, 3, 4"
        ),
    ),
    pgtrigger.Trigger(
        name="facet_update",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Update,
        referencing=pgtrigger.Referencing(old="facet_old_rows", new="facet_new_rows"),
        declare=FACET_DECLARE,
        func=facet_moves(
            "SELECT project_id, status, priority, who, sum(d) AS delta FROM ("
            " SELECT project_id, status, priority, coalesce(assignee_id, 0) AS who, 1 AS d FROM facet_new_rows"
            " UNION ALL"
            " SELECT project_id, status, priority, coalesce(assignee_id, 0), -1 FROM facet_old_rows"
            ") AS rows GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0"
        ),
    ),
    pgtrigger.Trigger(
        name="facet_truncate",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Truncate,
        func="DELETE FROM issues_issuefacettally; DELETE FROM issues_issuestatustally; RETURN NULL;",
    ),
    # The search document (``IssueSearch``): an INSERT statement of a few rows (a create, a small import)
    # writes their documents at once; a larger one (an import's batch, a COPY) queues its rows in
    # ``IssueSearchPending``, indexed right after the commit (``issues.search_index``). A row whose title
    # or description an UPDATE changed gets its document rewritten (no-op while it is still queued: the
    # indexer reads the text as it is then). A status change (PATCH, bulk) leaves it alone: the GIN index
    # is not touched by writes that do not change text. Each document row carries its issue's project and
    # creation time (``IssueSearch``), read from the same rows.
    pgtrigger.Trigger(
        name="search_insert",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Insert,
        referencing=pgtrigger.Referencing(new="search_new_rows"),
        func=f"IF (SELECT count(*) FROM search_new_rows) <= {SEARCH_INLINE_ROWS} THEN"
        " INSERT INTO issues_issuesearch (issue_id, project_id, created_at, document)"
        f" SELECT id, project_id, created_at, {SEARCH_DOCUMENT_SQL} FROM search_new_rows;"
        " ELSE INSERT INTO issues_issuesearchpending (issue_id) SELECT id FROM search_new_rows;"
        " END IF; RETURN NULL;",
    ),
    # The document also keeps the issue's ``created_at`` (and ``project_id``, which cannot change): nothing updates
    # ``created_at`` today, but a copy that could drift would make a search's order and count wrong, silently.
    pgtrigger.Trigger(
        name="search_update",
        level=pgtrigger.Row,
        when=pgtrigger.After,
        operation=pgtrigger.UpdateOf("title", "description", "created_at"),
        condition=pgtrigger.AnyChange("title", "description", "created_at"),
        func="UPDATE issues_issuesearch SET document = "
        + SEARCH_DOCUMENT_SQL.replace("search_new_rows.", "NEW.")
        + ", created_at = NEW.created_at WHERE issue_id = NEW.id; RETURN NULL;",
    ),
]
